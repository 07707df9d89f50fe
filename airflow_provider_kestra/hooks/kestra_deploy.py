"""Deploying flows, without I/O: the call descriptions of the deploy path and the bookkeeping of one
deployment (what was done, what was not, what is unknown). Internal to the hooks package; the sending is
:meth:`airflow_provider_kestra.hooks.kestra.KestraHook.deploy_flows`.

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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kestra.exceptions import KestraApiError, KestraError, KestraFlowDeployError
from airflow_provider_kestra.hooks.kestra_base import KestraCall, deploy_result

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_provider_kestra.utils.flows import KestraFlowDocument
    from airflow_provider_kestra.utils.models import KestraFlowDeployResult

BULK_REFUSED_WHOLE = frozenset({401, 403, 404, 405})
"""Statuses with which Kestra refuses a bulk write before writing anything (credentials, route); any other
error may come after some flows were written (2.0 answers some validation failures with 400)."""


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
