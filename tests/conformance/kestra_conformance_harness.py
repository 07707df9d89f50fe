"""Validate simulator responses against Kestra's published OpenAPI specs with openapi-core.

The conformance suite sends real HTTP requests to a running ``KestraSimulator`` and checks every answer
against the operation of the matching spec, chosen by method and path *template* (never by guessing from
the concrete URL: ``/executions/search`` and ``/executions/{executionId}`` both match ``/executions/search``):

* the status code must be one the operation declares (unless the call names a known departure of Kestra's code
  from its spec, or the status is an error the spec leaves undocumented);
* the body must validate against the declared media type and schema;
* error bodies the spec leaves undocumented are validated against Kestra's real error shape (Micronaut
  ``JsonError`` in 1.x, RFC 9457 problem+json in the 2.0 line), taken from Kestra's ``ErrorController``.

Specs are loaded once per process (``load_kestra_spec`` is cached). Spec self-validation is skipped: both
Kestra specs fail it (a Java-only ``\\p{Ll}`` regex, unresolved path parameters in EE admin paths), and those
defects do not touch the operations we check.

Where Kestra's code knowingly departs from its spec, the departure is written down once in ``SPEC_DEPARTURES``
(with the Kestra source that proves it) and applied to the loaded spec; the tests that rely on it say so
in their names.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.schemas import oas30_read_schema_validators_factory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

SPEC_FILES: dict[str, str] = {
    "oss-1.3.25": "kestra-oss-1.3.25-openapi.yml",
    "ee-1.3.0": "kestra-ee-1.3.0.yml",
    "ee-2.0": "kestra-ee.yml",
}

EE_TOKEN = "conformance-ee-token"
EE_TENANTS = ("main", "acme")

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kestra_spec_dir() -> Path:
    """Where the Kestra OpenAPI specs live: ``$KESTRA_OPENAPI_DIR`` or ``<repo>/../shared/kestra-openapi``."""
    configured = os.environ.get("KESTRA_OPENAPI_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "shared" / "kestra-openapi"


# --------------------------------------------------------------------------------------------------
# Departures of Kestra's code from its own spec
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KestraSpecDeparture:
    """One place where the JSON Kestra really serialises differs from the schema its spec publishes."""

    name: str
    specs: tuple[str, ...]
    reason: str
    patch: Callable[[dict[str, Any]], None]


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["components"]["schemas"]


def _drop_required(schema_name: str, *names: str) -> Callable[[dict[str, Any]], None]:
    def patch(spec: dict[str, Any]) -> None:
        schema = _schemas(spec).get(schema_name)
        if schema is not None and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in names]

    return patch


def _flow_labels_as_list(spec: dict[str, Any]) -> None:
    label_list = {"type": "array", "items": {"$ref": "#/components/schemas/Label"}}
    for schema in _iter_schema_nodes(_schemas(spec)):
        labels = schema.get("properties", {}).get("labels")
        if not isinstance(labels, dict) or "oneOf" not in labels:
            continue
        if all("type" not in branch for branch in labels["oneOf"]):
            labels["oneOf"] = [label_list, *labels["oneOf"]]


def _flow_variables_open(spec: dict[str, Any]) -> None:
    for schema in _iter_schema_nodes(_schemas(spec)):
        variables = schema.get("properties", {}).get("variables")
        if isinstance(variables, dict) and variables.get("additionalProperties") is False:
            variables["additionalProperties"] = True


def _properties_as_strings(spec: dict[str, Any]) -> None:
    for name, schema in _schemas(spec).items():
        if name.startswith("Property_") and "oneOf" in schema:
            schema.pop("type", None)
            schema.pop("properties", None)


def _object_values_open(spec: dict[str, Any]) -> None:
    for schema in _iter_schema_nodes(_schemas(spec)):
        for value in schema.get("properties", {}).values():
            if isinstance(value, dict) and value.get("additionalProperties") == {"type": "object"}:
                value["additionalProperties"] = True


def _outputs_as_shipped(spec: dict[str, Any]) -> None:
    """Replace the spec's ``/outputs/{executionId}[/{taskRunId}]`` by OutputController's three routes."""
    paths = spec["paths"]
    for stale in (
        "/api/v1/{tenant}/outputs/{executionId}",
        "/api/v1/{tenant}/outputs/{executionId}/{taskRunId}",
    ):
        paths.pop(stale, None)
    tenant = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}

    def operation(schema: dict[str, Any], *names: str) -> dict[str, Any]:
        parameters = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
        ]
        return {
            "get": {
                "parameters": [*parameters, tenant],
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                    "404": {"description": "NotFoundException"},
                },
            }
        }

    a_map = {"type": "object", "additionalProperties": True}
    information = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/OutputController.TaskOutputInformation"},
    }
    paths["/api/v1/{tenant}/outputs/executions/{executionId}"] = operation(a_map, "executionId")
    paths["/api/v1/{tenant}/outputs/tasks/{executionId}"] = operation(information, "executionId")
    paths["/api/v1/{tenant}/outputs/tasks/{executionId}/{taskRunId}"] = operation(
        a_map, "executionId", "taskRunId"
    )


def _iter_schema_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _iter_schema_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _iter_schema_nodes(value)


SPEC_DEPARTURES: tuple[KestraSpecDeparture, ...] = (
    KestraSpecDeparture(
        name="state-getter-names-required",
        specs=("oss-1.3.25", "ee-1.3.0", "ee-2.0"),
        reason=(
            "State lists getDuration/getStartDate/getEndDate as required, an artefact of the generator "
            "reading the Java getters; Jackson serialises them as duration/startDate/endDate, and "
            "duration/endDate are "
            "@JsonInclude(NON_EMPTY) Optionals absent while running (core/.../models/flows/State.java)."
        ),
        patch=_drop_required("State", "getDuration", "getStartDate", "getEndDate"),
    ),
    KestraSpecDeparture(
        name="flow-labels-list",
        specs=("oss-1.3.25", "ee-1.3.0", "ee-2.0"),
        reason=(
            "Flow.labels is a List<Label> written by ListOrMapOfLabelSerializer as a JSON list; the spec's "
            "oneOf kept only the Map branch of @Schema(oneOf={Label[].class, Map.class}) "
            "(core/.../flows/AbstractFlow.java)."
        ),
        patch=_flow_labels_as_list,
    ),
    KestraSpecDeparture(
        name="flow-variables-open-map",
        specs=("oss-1.3.25", "ee-1.3.0", "ee-2.0"),
        reason=(
            "Flow.variables is a Map<String, Object> annotated @Schema(additionalProperties=FALSE), so the "
            "spec forbids every key a real flow's variables have (core/.../flows/AbstractFlow.java)."
        ),
        patch=_flow_variables_open,
    ),
    KestraSpecDeparture(
        name="map-values-any-json",
        specs=("oss-1.3.25", "ee-1.3.0", "ee-2.0"),
        reason=(
            "Map<String, Object> fields (execution inputs/outputs/variables, trigger metadata...) are "
            "generated as additionalProperties {type: object}, as if every value were an object; Kestra "
            "writes the "
            'values as they are (strings, numbers, lists), e.g. flow outputs {"echoed": "world"}.'
        ),
        patch=_object_values_open,
    ),
    KestraSpecDeparture(
        name="property-written-as-string",
        specs=("oss-1.3.25", "ee-1.3.0", "ee-2.0"),
        reason=(
            "Property<T> (e.g. an input's defaults) is @Schema(oneOf={Object, String}) but generated with a "
            "top-level type: object that no string passes; PropertySerializer always writes the expression "
            "string (core/.../models/property/Property.java)."
        ),
        patch=_properties_as_strings,
    ),
    KestraSpecDeparture(
        name="outputs-controller-as-shipped",
        specs=("ee-2.0",),
        reason=(
            "The EE 2.0 spec (a 2.0.0-SNAPSHOT) lists GET /outputs/{executionId} and /outputs/{executionId}/"
            "{taskRunId}; Kestra 2.0's OutputController serves GET /outputs/executions/{executionId} (flow "
            "outputs, a map), /outputs/tasks/{executionId} (TaskOutputInformation[]) and /outputs/tasks/"
            "{executionId}/{taskRunId} (a map), and throws NotFoundException (404) for an unknown execution "
            "or task run (kestra-io/kestra webserver/.../controllers/api/OutputController.java @159e1bf8)."
        ),
        patch=_outputs_as_shipped,
    ),
)


# --------------------------------------------------------------------------------------------------
# Spec loading
# --------------------------------------------------------------------------------------------------

_JAVA_UNICODE_CLASSES: dict[str, tuple[str, ...]] = {
    "Ll": ("Ll",),
    "Lu": ("Lu",),
    "L": ("Lu", "Ll", "Lt", "Lm", "Lo"),
}


@functools.cache
def _python_char_classes() -> dict[str, str]:
    """Code-point ranges (for a ``[...]`` class) of Java ``\\p{..}`` categories, which Python's ``re`` lacks.

    Covers the Basic Multilingual Plane only (one pass over 65,536 code points, once per process): a label
    key with letters beyond it would be reported as a mismatch, never accepted wrongly.
    """
    ranges: dict[str, list[list[int]]] = {name: [] for name in _JAVA_UNICODE_CLASSES}
    for code in range(0x10000):
        category = unicodedata.category(chr(code))
        for name, categories in _JAVA_UNICODE_CLASSES.items():
            if category in categories:
                spans = ranges[name]
                if spans and spans[-1][1] == code - 1:
                    spans[-1][1] = code
                else:
                    spans.append([code, code])
    return {
        name: "".join(
            re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
            for lo, hi in spans
        )
        for name, spans in ranges.items()
    }


def _pythonise_pattern(pattern: str) -> str:
    """Rewrite Java Unicode property classes (``\\p{Ll}``, ``\\p{L}``) into explicit ranges of letters."""

    def replace(match: re.Match[str]) -> str:
        return _python_char_classes()[match.group(1)]

    return re.sub(r"\\p\{(Ll|Lu|L)\}", replace, pattern)


def _pythonise_patterns(spec: dict[str, Any]) -> None:
    for node in _iter_schema_nodes(spec):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and "\\p{" in pattern:
            node["pattern"] = _pythonise_pattern(pattern)


@dataclass
class KestraSpec:
    """One loaded Kestra spec: the patched document, its openapi-core app and helpers to look things up."""

    name: str
    document: dict[str, Any]
    raw_document: dict[str, Any]
    openapi: OpenAPI
    departures: tuple[KestraSpecDeparture, ...]
    _schema_validators: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.document["info"]["version"])

    def operation(self, method: str, template: str) -> dict[str, Any]:
        """The operation object for ``method`` + ``template``; AssertionError naming both when absent."""
        path_item = self.document["paths"].get(template)
        assert path_item is not None, f"{self.name} spec ({self.version}) has no path {template}"
        operation = path_item.get(method.lower())
        assert operation is not None, f"{self.name} spec has no {method.upper()} {template}"
        return operation

    def documents_status(self, method: str, template: str, status: int) -> bool:
        responses = self.operation(method, template)["responses"]
        return str(status) in responses or "default" in responses

    def schema_errors(self, schema_name: str, value: Any) -> list[str]:
        """Validate ``value`` against ``components.schemas.<schema_name>`` (response/read semantics)."""
        validator = self._schema_validators.get(schema_name)
        if validator is None:
            schema = self.openapi.spec / "components" / "schemas" / schema_name
            validator = oas30_read_schema_validators_factory.create(self.openapi.spec, schema)
            self._schema_validators[schema_name] = validator
        return [_describe_schema_error(error) for error in validator.validator.iter_errors(value)]


def _describe_schema_error(error: Any) -> str:
    location = "/".join(str(part) for part in getattr(error, "absolute_path", ())) or "<root>"
    if getattr(error, "validator", None) == "pattern":
        return f"{location}: {error.instance!r} does not match the spec's pattern"
    return f"{location}: {getattr(error, 'message', error)}"


@functools.cache
def load_kestra_spec(name: str) -> KestraSpec:
    """Load, patch and wrap one spec (``oss-1.3.25``, ``ee-1.3.0`` or ``ee-2.0``); done once per process."""
    path = kestra_spec_dir() / SPEC_FILES[name]
    with path.open("rb") as handle:
        raw = yaml.load(handle, Loader=_YAML_LOADER)
    document = copy.deepcopy(raw)
    departures = tuple(departure for departure in SPEC_DEPARTURES if name in departure.specs)
    for departure in departures:
        departure.patch(document)
    _pythonise_patterns(document)
    config = Config(
        spec_validator_cls=None,
        # Kestra's kill (2.0) declares ``produces = text/json``; openapi-core only knows application/json.
        extra_media_type_deserializers={"text/json": json_loads},
    )
    openapi = OpenAPI(SchemaPath.from_dict(document), config=config)
    return KestraSpec(name=name, document=document, raw_document=raw, openapi=openapi, departures=departures)


# --------------------------------------------------------------------------------------------------
# Kestra's error bodies (not in the specs; from Kestra's ErrorController and the 2.0 ProblemDetail)
# --------------------------------------------------------------------------------------------------

KESTRA_JSON_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "_links"],
    "properties": {
        "message": {"type": "string", "minLength": 1},
        "_links": {
            "type": "object",
            "required": ["self"],
            "properties": {
                "self": {
                    "type": "object",
                    "required": ["href"],
                    "properties": {"href": {"type": "string", "pattern": "^/"}},
                }
            },
        },
        "_embedded": {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["message"],
                        "properties": {"message": {"type": "string"}, "path": {"type": "string"}},
                    },
                }
            },
        },
    },
}
"""Micronaut HATEOAS ``JsonError`` as built by Kestra 1.x ``ErrorController`` (``message``, ``_links``)."""

KESTRA_PROBLEM_DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": False,
    "properties": {
        "type": {
            "type": "string",
            "pattern": "^https://kestra\\.io/docs/api-reference/problems/[a-z0-9]+(-[a-z0-9]+)*$",
        },
        "title": {"type": "string", "minLength": 1},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "minLength": 1},
        "instance": {"type": "string", "pattern": "^/"},
        "traceId": {"type": "string", "minLength": 1},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["detail"],
                "additionalProperties": False,
                "properties": {
                    "detail": {"type": "string"},
                    "pointer": {"type": "string"},
                    "path": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
"""RFC 9457 problem+json of the 2.0 line: kestra-io/kestra ``webserver/.../errors/ProblemDetail.java``
@0a46f3b4 (``NON_EMPTY``: ``detail`` and ``instance`` always present per ``ProblemFactory`` @a5a9d5d2) and its
``errors[]`` items, ``ProblemError.java`` @2a251f35 (``detail``, ``pointer``, ``path``, ``type``)."""


def kestra_error_shape_errors(body: Any, schema: Mapping[str, Any]) -> list[str]:
    """Validate an error body against one of the error schemas above (plain JSON Schema, no refs)."""
    from jsonschema import Draft7Validator

    return [_describe_schema_error(error) for error in Draft7Validator(dict(schema)).iter_errors(body)]


# --------------------------------------------------------------------------------------------------
# Server-sent events
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SseFrame:
    """One SSE event as Micronaut writes it: ``id:``/``event:``/``data:`` lines ended by a blank line."""

    id: str | None
    event: str | None
    data: str


def parse_sse_frames(text: str) -> list[SseFrame]:
    """Split an SSE body into frames (independent of the provider's own parser, which it must not trust)."""
    frames: list[SseFrame] = []
    for block in re.split(r"\r?\n\r?\n", text):
        if not block.strip():
            continue
        fields: dict[str, list[str]] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            fields.setdefault(key, []).append(value[1:] if value.startswith(" ") else value)
        frames.append(
            SseFrame(
                id=fields["id"][-1] if "id" in fields else None,
                event=fields["event"][-1] if "event" in fields else None,
                data="\n".join(fields.get("data", [])),
            )
        )
    return frames


# --------------------------------------------------------------------------------------------------
# The HTTP driver that checks every answer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KestraProfile:
    """How one simulated Kestra version lays out its API and which spec judges it."""

    name: str
    version: str
    spec_name: str
    tenant: str | None
    error_schema: Mapping[str, Any]

    def served_path(self, template: str) -> str:
        """The path the server answers on: 0.22 has no ``/{tenant}`` segment (its spec: 1.3's, without it)."""
        if self.tenant is None:
            return template.replace("/api/v1/{tenant}/", "/api/v1/", 1)
        return template


PROFILE_1_3 = KestraProfile("1.3", "1.3", "oss-1.3.25", "main", KESTRA_JSON_ERROR_SCHEMA)
PROFILE_1_3_EE = KestraProfile("1.3-EE", "1.3", "ee-1.3.0", "main", KESTRA_JSON_ERROR_SCHEMA)
PROFILE_2_0 = KestraProfile("2.0", "2.0", "ee-2.0", "main", KESTRA_PROBLEM_DETAIL_SCHEMA)
PROFILE_0_22 = KestraProfile("0.22", "0.22", "oss-1.3.25", None, KESTRA_JSON_ERROR_SCHEMA)

VALIDATED_OPERATIONS: set[tuple[str, str, str]] = set()
"""(profile name, METHOD, path template) of every answer validated in this process, for the coverage test."""


@dataclass
class KestraConformanceClient:
    """Sends requests by path template and checks each answer against the profile's spec.

    ``conform()`` is the one entry point: it formats the template (``{tenant}`` is filled from the profile),
    sends the request, asserts the expected status, and validates the answer.
    """

    http: httpx.Client
    profile: KestraProfile
    spec: KestraSpec
    #: Judges the operations ``spec`` lacks (the EE 1.3.0 spec misses some OSS 1.3 operations).
    fallback_spec: KestraSpec | None = None

    def _judge(self, method: str, template: str) -> KestraSpec:
        """The spec that documents ``method`` + ``template``: the primary one, else the fallback."""
        item = self.spec.document["paths"].get(template, {})
        if method.lower() not in item and self.fallback_spec is not None:
            return self.fallback_spec
        return self.spec

    def send(
        self,
        method: str,
        template: str,
        *,
        path: Mapping[str, str] | None = None,
        **request: Any,
    ) -> httpx.Response:
        """Send without checking (for setup and for the negative checks that build their own assertions)."""
        return self.http.request(method, self.url(template, path), **request)

    def url(self, template: str, path: Mapping[str, str] | None = None) -> str:
        values = dict(path or {})
        served = self.profile.served_path(template)
        if "{tenant}" in served:
            values.setdefault("tenant", self.profile.tenant or "")
        return served.format_map({key: _quote_segment(value) for key, value in values.items()})

    def conform(
        self,
        method: str,
        template: str,
        status: int,
        *,
        path: Mapping[str, str] | None = None,
        spec_status: int | None = None,
        error_body: str = "auto",
        **request: Any,
    ) -> httpx.Response:
        """Send, assert ``status``, validate against the spec operation ``method`` + ``template``.

        ``spec_status``: the code whose documented response judges the body when Kestra's code answers with
        another one than its spec (a departure: the test name must contain ``like_kestra_code``). An error
        status the spec does not document needs ``undocumented_in_spec`` (or ``like_kestra_code``) in the
        test name. ``error_body``, for error statuses the spec gives no body schema: ``"auto"`` (the profile's
        error shape), ``"empty"``, ``"text"`` (a bare string, not JSON).
        """
        response = self.send(method, template, path=path, **request)
        assert response.status_code == status, (
            f"{method} {response.request.url.path}: expected {status}, got {response.status_code}: "
            f"{response.text[:500]}"
        )
        self.check(method, template, response, spec_status=spec_status, error_body=error_body, path=path)
        return response

    def check(
        self,
        method: str,
        template: str,
        response: httpx.Response,
        *,
        spec_status: int | None = None,
        error_body: str = "auto",
        path: Mapping[str, str] | None = None,
    ) -> None:
        """Validate an already received answer (see ``conform``); record the operation once it passed."""
        self._check(method, template, response, spec_status=spec_status, error_body=error_body, path=path)
        VALIDATED_OPERATIONS.add((self.profile.name, method.upper(), template))

    def _check(
        self,
        method: str,
        template: str,
        response: httpx.Response,
        *,
        spec_status: int | None,
        error_body: str,
        path: Mapping[str, str] | None,
    ) -> None:
        spec_path = template
        spec = self._judge(method, template)
        operation = spec.operation(method, spec_path)
        judged_status = spec_status if spec_status is not None else response.status_code
        if spec_status is not None:
            assert not spec.documents_status(method, spec_path, response.status_code), (
                f"{method} {spec_path}: {response.status_code} is documented, no departure needed"
            )
            assert spec.documents_status(method, spec_path, spec_status), (
                f"{method} {spec_path}: the spec does not document {spec_status} either"
            )
            _require_test_name_saying("departs from the spec", "like_kestra_code")
        documented = spec.documents_status(method, spec_path, judged_status)
        content = operation["responses"].get(str(judged_status), {}).get("content") if documented else None
        if response.status_code >= 400 and not content:
            if not documented:
                _require_test_name_saying(
                    f"gets {response.status_code}, not in the spec",
                    "undocumented_in_spec",
                    "like_kestra_code",
                )
            self._check_error_body(response, error_body)
            return
        assert documented, (
            f"{method} {spec_path} answered {response.status_code}, which the {spec.name} spec does not "
            f"document (documented: {sorted(operation['responses'])})"
        )
        assert "text/event-stream" not in (content or {}), (
            f"{spec_path} is an event stream: use conform_stream()"
        )
        errors = self._openapi_errors(spec, method, spec_path, response, judged_status, path)
        assert not errors, f"{method} {spec_path} {response.status_code} violates {spec.name}:\n" + "\n".join(
            errors
        )

    def conform_stream(
        self,
        template: str,
        *,
        path: Mapping[str, str] | None = None,
        stop: Callable[[SseFrame], bool] = lambda frame: False,
        timeout: float = 20.0,
        stub_start: bool = False,
        **request: Any,
    ) -> list[SseFrame]:
        """GET an SSE endpoint, read frames until ``stop(frame)`` or the server closes, validate every frame.

        Each frame becomes the spec's ``Event_<T>_`` object (``data`` parsed, ``id``, ``name`` = ``event:``).
        ``stub_start``: the first ``id: start`` frame carries a stub that Kestra's code builds without the
        fields the spec requires (a departure the calling test names); only the absence of the fields such a
        stub lacks (``_STUB_MISSING_REQUIRED``) is forgiven, and only on that frame.
        """
        spec = self._judge("GET", template)
        operation = spec.operation("GET", template)
        media = operation["responses"]["200"]["content"]["text/event-stream"]
        event_schema = media["schema"]["$ref"].rsplit("/", 1)[-1]
        frames: list[SseFrame] = []
        with self.http.stream(
            "GET", self.url(template, path), timeout=httpx.Timeout(timeout), **request
        ) as response:
            assert response.status_code == 200, (
                f"GET {template}: {response.status_code} {response.read()[:300]!r}"
            )
            assert response.headers.get("content-type", "").startswith("text/event-stream"), response.headers
            buffer = ""
            for chunk in response.iter_text():
                buffer += chunk
                *complete, buffer = re.split(r"\r?\n\r?\n", buffer)
                for block in complete:
                    frames.extend(parse_sse_frames(block + "\n\n"))
                if frames and stop(frames[-1]):
                    break
            else:
                frames.extend(parse_sse_frames(buffer))
        assert frames, f"GET {template}: the event stream carried no frame"
        for index, frame in enumerate(frames):
            event: dict[str, Any] = {"data": json.loads(frame.data)}
            if frame.id is not None:
                event["id"] = frame.id
            if frame.event is not None:
                event["name"] = frame.event
            errors = spec.schema_errors(event_schema, event)
            if stub_start and index == 0 and frame.id == "start":
                errors = [error for error in errors if error not in _STUB_MISSING_REQUIRED]
            assert not errors, f"SSE frame #{index} id={frame.id} violates {event_schema}:\n" + "\n".join(
                errors
            )
        VALIDATED_OPERATIONS.add((self.profile.name, "GET", template))
        return frames

    def _openapi_errors(
        self,
        spec: KestraSpec,
        method: str,
        spec_path: str,
        response: httpx.Response,
        judged_status: int,
        path: Mapping[str, str] | None,
    ) -> list[str]:
        request = MockRequest(
            host_url=f"{response.request.url.scheme}://{response.request.url.netloc.decode()}",
            method=method.lower(),
            path=response.request.url.path,
            path_pattern=spec_path,
            view_args={"tenant": self.profile.tenant or "main", **dict(path or {})},
        )
        content_type = response.headers.get("content-type", "")
        adapted = MockResponse(
            data=response.content,
            status_code=judged_status,
            headers=dict(response.headers),
            content_type=content_type.split(";")[0].strip().lower(),
        )
        messages: list[str] = []
        for error in spec.openapi.iter_response_errors(request, adapted):
            messages.append(f"{type(error).__name__}: {error}")
            cause = error.__cause__
            for detail in getattr(cause, "schema_errors", ()) or ():
                messages.append("  " + _describe_schema_error(detail))
        return messages

    def _check_error_body(self, response: httpx.Response, error_body: str) -> None:
        if error_body == "empty":
            assert response.content == b"", f"expected an empty body, got {response.text[:300]!r}"
            return
        if error_body == "text":
            # Micronaut writes a String body as is, even under its default application/json content type.
            assert response.text, "expected a bare string body, got nothing"
            try:
                json.loads(response.text)
            except ValueError:
                return
            raise AssertionError(f"expected a bare string body, got JSON {response.text[:300]}")
        assert error_body == "auto", error_body
        errors = kestra_error_shape_errors(response.json(), self.profile.error_schema)
        assert not errors, f"error body is not Kestra's error shape: {response.text[:300]}\n" + "\n".join(
            errors
        )


_STUB_MISSING_REQUIRED = frozenset(
    f"data: '{name}' is a required property" for name in ("namespace", "flowId", "flowRevision", "state")
)
"""What ``Execution.builder().id(id).build()`` / an empty ``LogEntry`` (the ``start`` stubs) lack."""


def _require_test_name_saying(what: str, *markers: str) -> None:
    """The running test's name must say that it relies on a departure or an undocumented status."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "")
    assert not test or "gotcha_" in test or any(marker in test for marker in markers), (
        f"{test.split(' ')[0]} {what}: its name must say so (one of {markers}, or be a gotcha test)"
    )


def _quote_segment(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")
