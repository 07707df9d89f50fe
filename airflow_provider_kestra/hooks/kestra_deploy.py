"""Deploying flows: the call descriptions of the deploy path, the bookkeeping of one deployment (what was
done, what was not, what is unknown), and :class:`KestraFlowDeployer`, the flow half of
:class:`airflow_provider_kestra.hooks.kestra.KestraHook` that sends them (``deploy_flows`` and the flow
calls). Internal to the hooks package.

**How a deployment goes** (API 1 and 2): validate every flow in one ``POST /flows/validate``; then per
namespace, one ``GET /flows/{namespace}`` (ids and revisions: what exists) and one ``POST /flows/bulk``
with every flow of that namespace. Kestra keeps the revision of a flow whose source is identical
(``isSameWithSource``), so an unchanged redeploy writes nothing; the revisions before and after tell
``created``, ``updated`` and ``unchanged`` apart.

**Kestra's bulk endpoint** (``FlowController#bulkUpdateFlows`` / ``bulkUpdateOrCreate``,
``webserver/src/main/java/io/kestra/webserver/controllers/api/FlowController.java``,
kestra-io/kestra@044883a011f1d0531cba4f23987ab5799f1d46eb; the 2.0 spec documents the same parameters):

* the body is cut with ``flows.split("---")``: every ``---``, not only separator lines, and each piece
  becomes a flow source as is (``GenericFlow.fromYaml``, not trimmed). :func:`bulk_body` therefore joins
  the sources with a bare ``---``, so Kestra stores each one byte for byte, as ``POST /flows`` would;
  a source holding ``---`` or ending with ``-`` is written on its own (:func:`fits_bulk`);
* ``delete`` defaults to **true**: it deletes the flows of ``namespace`` (exact namespace) whose id is
  not in the body, or with no ``namespace`` the unlisted flows of the **whole tenant**. The hook always
  sends ``namespace`` and ``delete`` explicitly;
* with ``namespace``, a flow of another namespace is refused (422) before anything is written; two
  flows with one id are refused too (ids are compared without their namespace);
* not a transaction: the deletions come first, then each flow is created or updated in turn, so a
  failure midway leaves the flows before it written (hence :attr:`KestraDeployLedger.unknown`);
* the answer lists the deleted flows (as they were before the deletion), then every flow of the body
  as saved, with its revision.

**0.22** writes flow by flow (``GET`` of the existing ones, ``POST``/``PUT`` when different): its
``bulkUpdate`` takes no ``namespace`` (kestra-io/kestra@629ce96f6cb4cfee5be1e643b7b83a06dd89a690), so a
mistake in ``delete`` would prune the whole tenant, and it stores ``trim()``-ed sources. A server that
answers the bulk route 404 or 405 is served the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import (
    KestraApiError,
    KestraConfigError,
    KestraError,
    KestraFlowDeployError,
    KestraFlowValidationError,
    KestraMethodNotAllowedError,
    KestraNotFoundError,
)
from airflow_provider_kestra.hooks import kestra_base as base
from airflow_provider_kestra.hooks.kestra_base import KestraAttemptFailure, KestraCall, deploy_result
from airflow_provider_kestra.hooks.kestra_requests import KestraRequestsBase
from airflow_provider_kestra.utils.flows import (
    KestraFlowDocument,
    parse_sources,
    problems_message,
    scope_problems,
    validation_problems,
)
from airflow_provider_kestra.utils.retry import is_ambiguous
from airflow_provider_kestra.utils.routes import has_route

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_provider_kestra.utils.models import KestraFlow, KestraFlowDeployResult, KestraFlowProblem
    from airflow_provider_kestra.utils.routes import KestraApiVersion

BULK_REFUSED_WHOLE = frozenset({401, 403, 404, 405})
"""Statuses with which Kestra refuses a bulk write before writing anything (credentials, route); any other
error may come after some flows were written (2.0 answers some validation failures with 400)."""

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ the calls
def bulk_flows_call(namespace: str, documents: Sequence[KestraFlowDocument], *, delete: bool) -> KestraCall:
    """``POST /flows/bulk?namespace=&delete=``: every flow of one namespace in one body."""
    params = [("namespace", namespace), ("delete", "true" if delete else "false")]
    context = f"Deploying {len(documents)} flow(s) of namespace {namespace}"
    return KestraCall(
        "flow_bulk", params=params, **_yaml(bulk_body(documents)), context=context, answer="list"
    )


def create_document_call(doc: KestraFlowDocument) -> KestraCall:
    """``POST /flows`` for a parsed document (its identity is known: the source is not parsed again)."""
    return KestraCall(
        "flow_create", **_yaml(doc.source), context=f"Creating flow {doc.namespace}.{doc.flow_id}"
    )


def _yaml(text: str) -> dict[str, Any]:
    return {"body": text.encode("utf-8"), "headers": {"Content-Type": "application/x-yaml"}}


def bulk_body(documents: Sequence[KestraFlowDocument]) -> str:
    """The sources joined with a bare ``---``: Kestra's ``split("---")`` gives each one back unchanged."""
    return "---".join(doc.source for doc in documents)


def fits_bulk(doc: KestraFlowDocument) -> bool:
    """Whether Kestra's ``split("---")`` would give this source back whole inside a bulk body."""
    return not doc.has_separator_text and not doc.source.endswith("-")


def maybe_applied(error: KestraError, *, sent: bool, bulk: bool) -> bool:
    """Whether a failed write may still have changed Kestra: never when it was not sent; for an error
    answer, a single write is refused whole below 500, a bulk one only with :data:`BULK_REFUSED_WHOLE`."""
    if not sent:
        return False
    if isinstance(error, KestraApiError):
        return error.status not in BULK_REFUSED_WHOLE if bulk else error.status >= 500
    return True


def revisions_by_id(flows: Iterable[Mapping[str, Any]]) -> dict[str, int | None]:
    """``{flow id: revision}`` of a listing or of a bulk answer (later entries win)."""
    found: dict[str, int | None] = {}
    for flow in flows:
        if isinstance(flow, dict) and flow.get("id") is not None:
            revision = flow.get("revision")
            found[str(flow["id"])] = int(revision) if revision is not None else None
    return found


def bulk_results(
    documents: Sequence[KestraFlowDocument], before: Mapping[str, int | None], answer: Sequence[Any]
) -> list[KestraFlowDeployResult]:
    """What a bulk write did to each flow, from the revisions before (listing) and after (answer)."""
    after = revisions_by_id(answer)
    results = []
    for doc in documents:
        if doc.flow_id not in after:
            raise KestraError(
                f"Kestra's answer to the bulk deployment of namespace {doc.namespace} does not list flow "
                f"{doc.flow_id}"
            )
        revision = after[doc.flow_id]
        if doc.flow_id not in before:
            action = "created"
        elif revision is not None and revision == before[doc.flow_id]:
            action = "unchanged"
        else:
            action = "updated"
        results.append(deploy_result(doc.namespace, doc.flow_id, revision, action))
    return results


def flow_key(namespace: str, flow_id: str) -> str:
    """``namespace.id``: how a deployment error names a flow."""
    return f"{namespace}.{flow_id}"


# ------------------------------------------------------------------------------------------ the ledger
@dataclass
class KestraDeployLedger:
    """What one deployment did so far: results, flows not yet touched, flows whose write had no answer."""

    pending: list[str]
    results: list[KestraFlowDeployResult] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, documents: Sequence[KestraFlowDocument]) -> KestraDeployLedger:
        """A ledger where every flow of ``documents`` is still to deploy."""
        return cls([flow_key(doc.namespace, doc.flow_id) for doc in documents])

    def done(self, *results: KestraFlowDeployResult) -> None:
        """Record finished actions (deployed flows leave :attr:`pending`)."""
        for result in results:
            self.results.append(result)
            key = flow_key(result["namespace"], result["flow_id"])
            if key in self.pending:
                self.pending.remove(key)

    def lost(self, keys: Iterable[str]) -> None:
        """Record writes that may or may not have happened (they leave :attr:`pending`)."""
        for key in keys:
            if key in self.pending:
                self.pending.remove(key)
            self.unknown.append(key)

    def error(self, err: KestraError) -> KestraFlowDeployError:
        """The error that ends the deployment, naming each flow in exactly one of three lists."""
        done = ", ".join(f"{flow_key(r['namespace'], r['flow_id'])} ({r['action']})" for r in self.results)
        message = f"Flow deployment stopped: {err}. Already deployed: {done or 'nothing'}. "
        message += f"Not deployed: {', '.join(self.pending) or 'none'}."
        if self.unknown:
            message += (
                f" Unknown (written, but Kestra's answer was lost or partial; check these in Kestra): "
                f"{', '.join(self.unknown)}."
            )
        return KestraFlowDeployError(
            message, deployed=list(self.results), not_deployed=list(self.pending), unknown=list(self.unknown)
        )


class KestraWriteFailed(Exception):
    """A deploy write failed; ``sent``: whether any attempt may have reached Kestra (then it may have
    acted on it, see :func:`maybe_applied`)."""

    def __init__(self, error: KestraError, *, sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


# ------------------------------------------------------------------------------------- the deploying
class KestraFlowDeployer(KestraRequestsBase):
    """The flow half of :class:`airflow_provider_kestra.hooks.kestra.KestraHook`: flow reads and writes,
    validation and deployment (which provides ``api_version`` and ``_route_of``)."""

    if TYPE_CHECKING:

        @property
        def api_version(self) -> KestraApiVersion: ...

    def get_flow(self, namespace: str, flow_id: str, *, source: bool = True) -> KestraFlow:
        """A flow (with its YAML ``source`` by default)."""
        return self._call(base.get_flow_call(namespace, flow_id, source=source))

    def list_flows(self, namespace: str) -> list[KestraFlow]:
        """The flows of exactly this namespace."""
        return self._call(base.list_flows_call(namespace))

    def create_flow(self, source: str) -> KestraFlow:
        """Create a flow from its YAML source, sent untouched."""
        return self._call(base.create_flow_call(source))

    def update_flow(self, namespace: str, flow_id: str, source: str) -> KestraFlow:
        """Replace a flow's source (the source's id/namespace must match, Kestra refuses otherwise)."""
        return self._call(base.update_flow_call(namespace, flow_id, source))

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        """Delete a flow (Kestra keeps it as a deleted revision)."""
        self._call(base.delete_flow_call(namespace, flow_id))

    def validate_flows(
        self, sources: str | Sequence[str], filenames: Sequence[str] | None = None
    ) -> list[KestraFlowProblem]:
        """Check flow sources locally and with ``POST /flows/validate``; returns only the problems.

        Each problem names the file, the flow's position in it, namespace, id and Kestra's message.
        """
        documents, problems = parse_sources(sources, filenames)
        return problems + self._validate_documents(documents)

    def _validate_documents(self, documents: list[KestraFlowDocument]) -> list[KestraFlowProblem]:
        # Documents holding "---" go alone: Kestra's naive split would cut them inside a batch.
        batch = [doc for doc in documents if not doc.has_separator_text]
        groups = ([batch] if batch else []) + [[doc] for doc in documents if doc.has_separator_text]
        problems: list[KestraFlowProblem] = []
        for group in groups:
            body = "\n---\n".join(doc.source.rstrip("\n") for doc in group) + "\n"
            problems.extend(validation_problems(group, self._call(base.validate_flows_call(body))))
        return problems

    def upsert_flow(self, source: str, *, dry_run: bool = False) -> KestraFlowDeployResult:
        """Create the flow, update it, or leave it when Kestra already has this exact source."""
        namespace, flow_id = base.flow_identity_of(source)
        try:
            existing = self.get_flow(namespace, flow_id, source=True)
        except KestraNotFoundError:
            existing = None
        if existing is None:
            if dry_run:
                return base.deploy_result(namespace, flow_id, None, "would-create")
            created = self.create_flow(source)
            return base.deploy_result(namespace, flow_id, created.get("revision"), "created")
        revision = existing.get("revision")
        if base.same_source(existing.get("source"), source):
            return base.deploy_result(namespace, flow_id, revision, "unchanged")
        if dry_run:
            return base.deploy_result(namespace, flow_id, revision, "would-update")
        updated = self.update_flow(namespace, flow_id, source)
        new_revision = updated.get("revision")
        action = "unchanged" if new_revision is not None and new_revision == revision else "updated"
        return base.deploy_result(namespace, flow_id, new_revision, action)

    def deploy_flows(
        self,
        sources: str | Sequence[str],
        *,
        namespace: str | None = None,
        delete_missing: bool = False,
        dry_run: bool = False,
        filenames: Sequence[str] | None = None,
    ) -> list[KestraFlowDeployResult]:
        """Validate every flow, then create/update them (and delete the namespace's other flows).

        Nothing is deployed when any flow is invalid (:class:`KestraFlowValidationError` lists them all).
        ``delete_missing`` needs an explicit ``namespace`` and only touches flows of exactly that namespace.
        Requests: one validation, then per namespace one listing and one bulk write (flow by flow on 0.22:
        see :mod:`airflow_provider_kestra.hooks.kestra_deploy`). A failure midway raises
        :class:`KestraFlowDeployError` naming the flows deployed, not deployed and unknown.
        """
        if delete_missing and not namespace:
            raise KestraConfigError(
                "delete_missing=True needs an explicit namespace (refusing to guess which flows to delete)"
            )
        documents, problems = parse_sources(sources, filenames)
        problems += scope_problems(documents, namespace) + self._validate_documents(documents)
        if problems:
            raise KestraFlowValidationError(problems_message(problems), problems)
        groups: dict[str, list[KestraFlowDocument]] = {}
        for doc in documents:
            groups.setdefault(doc.namespace, []).append(doc)
        ledger = KestraDeployLedger.of(documents)
        try:
            for flow_namespace, docs in groups.items():
                prune = delete_missing and flow_namespace == namespace
                if dry_run:
                    ledger.done(*self._dry_run_namespace(flow_namespace, docs, prune))
                else:
                    self._deploy_namespace(flow_namespace, docs, prune, ledger)
        except KestraError as err:
            raise ledger.error(err) from err
        order = {flow_key(doc.namespace, doc.flow_id): index for index, doc in enumerate(documents)}
        return sorted(
            ledger.results, key=lambda r: order.get(flow_key(r["namespace"], r["flow_id"]), len(order))
        )

    def _deploy_namespace(
        self, namespace: str, docs: list[KestraFlowDocument], prune: bool, ledger: KestraDeployLedger
    ) -> None:
        """Write the flows of one namespace: one bulk request where the server has it, else flow by flow."""
        before = revisions_by_id(self.list_flows(namespace))
        wanted = {doc.flow_id for doc in docs}
        missing = [flow_id for flow_id in before if flow_id not in wanted] if prune else []
        bulk = [doc for doc in docs if fits_bulk(doc)] if has_route("flow_bulk", self.api_version) else []
        alone = [doc for doc in docs if not fits_bulk(doc)] if bulk else list(docs)
        pruned_by_bulk = bool(missing) and not alone
        if bulk:
            call = bulk_flows_call(namespace, bulk, delete=pruned_by_bulk)
            try:
                answer = self._write(call)
            except KestraWriteFailed as failed:
                if not isinstance(failed.error, (KestraNotFoundError, KestraMethodNotAllowedError)):
                    if maybe_applied(failed.error, sent=failed.sent, bulk=True):
                        lost = [flow_key(namespace, doc.flow_id) for doc in bulk]
                        deleted = missing if pruned_by_bulk else []
                        ledger.lost(lost + [f"{flow_key(namespace, fid)} (deletion)" for fid in deleted])
                    raise failed.error from None
                log.warning(
                    "%s: no bulk route on this server (%s); writing flow by flow", call.context, failed
                )
                alone, pruned_by_bulk = list(docs), False
            else:
                try:
                    ledger.done(*bulk_results(bulk, before, answer))
                except KestraError:
                    ledger.lost([flow_key(namespace, doc.flow_id) for doc in bulk])
                    raise
                if pruned_by_bulk:
                    ledger.done(*(base.deploy_result(namespace, fid, None, "deleted") for fid in missing))
        for doc in alone:
            ledger.done(self._write_document(doc, before, ledger))
        if not pruned_by_bulk:
            for flow_id in missing:
                call = base.delete_flow_call(namespace, flow_id)
                self._write_or_lose(call, ledger, flow_key(namespace, flow_id))
                ledger.done(base.deploy_result(namespace, flow_id, None, "deleted"))

    def _write_document(
        self, doc: KestraFlowDocument, before: Mapping[str, int | None], ledger: KestraDeployLedger
    ) -> KestraFlowDeployResult:
        """Create or update one flow (read first when it exists, and left alone when identical)."""
        key = flow_key(doc.namespace, doc.flow_id)
        if doc.flow_id not in before:
            created = self._write_or_lose(create_document_call(doc), ledger, key)
            return base.deploy_result(doc.namespace, doc.flow_id, created.get("revision"), "created")
        existing = self.get_flow(doc.namespace, doc.flow_id, source=True)
        revision = existing.get("revision")
        if base.same_source(existing.get("source"), doc.source):
            return base.deploy_result(doc.namespace, doc.flow_id, revision, "unchanged")
        call = base.update_flow_call(doc.namespace, doc.flow_id, doc.source)
        new_revision = self._write_or_lose(call, ledger, key).get("revision")
        action = "unchanged" if new_revision is not None and new_revision == revision else "updated"
        return base.deploy_result(doc.namespace, doc.flow_id, new_revision, action)

    def _write_or_lose(self, call: KestraCall, ledger: KestraDeployLedger, key: str) -> Any:
        """Send one single-flow write; when it fails after maybe reaching Kestra, ``key`` becomes unknown."""
        try:
            return self._write(call) or {}
        except KestraWriteFailed as failed:
            if maybe_applied(failed.error, sent=failed.sent, bulk=False):
                ledger.lost([key if call.route != "flow_delete" else f"{key} (deletion)"])
            raise failed.error from None

    def _write(self, call: KestraCall) -> Any:
        """Send a write with its route's retries; a failure raises :class:`KestraWriteFailed`, which says
        whether any attempt may have reached Kestra (connection lost after sending, 502-504, an answer)."""
        route = self._route_of(call)
        attempt, sent = 0, False
        while True:
            try:
                response = self._attempt(route, call)
            except KestraAttemptFailure as failure:
                sent = sent or is_ambiguous(failure.kind)
                try:
                    pause = self._retry_or_give_up(route, attempt, failure)
                except KestraError as err:
                    raise KestraWriteFailed(err, sent=sent) from None
                self._sleep(pause)
                attempt += 1
                continue
            except KestraApiError as err:
                raise KestraWriteFailed(err, sent=True) from None
            except KestraError as err:
                raise KestraWriteFailed(err, sent=sent) from None
            try:
                return self._answer(call, route, response)
            except KestraError as err:
                raise KestraWriteFailed(err, sent=True) from None
            finally:
                response.close()

    def _dry_run_namespace(
        self, namespace: str, docs: list[KestraFlowDocument], prune: bool
    ) -> list[KestraFlowDeployResult]:
        """What deploying would do to one namespace: reads only (the existing flows' sources)."""
        before = revisions_by_id(self.list_flows(namespace))
        results = []
        for doc in docs:
            if doc.flow_id not in before:
                results.append(base.deploy_result(doc.namespace, doc.flow_id, None, "would-create"))
                continue
            existing = self.get_flow(doc.namespace, doc.flow_id, source=True)
            same = base.same_source(existing.get("source"), doc.source)
            action = "unchanged" if same else "would-update"
            results.append(base.deploy_result(doc.namespace, doc.flow_id, existing.get("revision"), action))
        if prune:
            wanted = {doc.flow_id for doc in docs}
            results += [
                base.deploy_result(namespace, fid, None, "would-delete")
                for fid in before
                if fid not in wanted
            ]
        return results
