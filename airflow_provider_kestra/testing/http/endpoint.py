"""Request plumbing shared by the API modules: auth, tenant checks, error rendering, parameter parsing."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.responses import Response

from airflow_provider_kestra.testing.backend.exceptions import (
    KestraSimActionTimeout,
    KestraSimError,
    KestraSimHttpStatus,
    KestraSimIllegalArgument,
    KestraSimNotFound,
)
from airflow_provider_kestra.testing.backend.inputs import KestraSimUploadedFile
from airflow_provider_kestra.testing.http.errors import KestraSimulatorHttpError, bad_request, http_error
from airflow_provider_kestra.testing.journal import FAULTS_SCOPE_KEY

if TYPE_CHECKING:
    from starlette.requests import Request

    from airflow_provider_kestra.testing.context import KestraSimContext

KestraSimHandler = Callable[["KestraSimContext", "Request", str], Awaitable[Response]]


def error_headers(
    ctx: KestraSimContext, error: KestraSimulatorHttpError, *, route_matched: bool
) -> dict[str, str]:
    """The error's headers, plus (2.0 ``NotFoundHeadersFilter``) on a 404 the edition and whether a route
    matched: ``X-Kestra-Route-Matched: false`` means "no such route on this server", ``true`` "no such
    entity" (kestra-io/kestra ``webserver/.../filter/NotFoundHeadersFilter.java`` @fc858e03)."""
    headers = dict(error.headers)
    if error.status == 404 and ctx.profile.not_found_headers:
        headers.setdefault("X-Kestra-Edition", ctx.edition)
        headers.setdefault("X-Kestra-Route-Matched", "true" if route_matched else "false")
    return headers


def error_response(ctx: KestraSimContext, error: KestraSimulatorHttpError, request: Request) -> Response:
    """Render an error raised by a matched route in the profile's body format."""
    body, media_type = error.render(ctx.profile, request.url.path, request.url.query)
    headers = error_headers(ctx, error, route_matched=True)
    return Response(body, status_code=error.status, media_type=media_type, headers=headers)


def unauthorized(ctx: KestraSimContext, request: Request) -> Response:
    """401 with ``WWW-Authenticate: Basic`` (left out when Referer ends in /login): an empty body in 1.x,
    the ``unauthenticated`` problem in 2.0 (``ProblemResponseFilter`` fills the filter's bodiless 401)."""
    headers: dict[str, str] = {}
    if not request.headers.get("referer", "").endswith("/login"):
        realm = ctx.profile.basic_realm
        headers["WWW-Authenticate"] = f'Basic realm="{realm}"' if realm else "Basic"
    if not ctx.profile.problem_json:
        return Response(b"", status_code=401, headers=headers)
    error = KestraSimulatorHttpError(401, empty=True, headers=headers)
    return error_response(ctx, error, request)


def csrf_refusal(ctx: KestraSimContext, request: Request) -> Response:
    """403 for a cookie-authenticated write without ``X-CSRF-TOKEN`` (a text/plain refusal, which
    ``ProblemResponseFilter`` turns into the ``forbidden`` problem)."""
    error = KestraSimulatorHttpError(403, "CSRF token missing or invalid", plain=True)
    if not ctx.profile.problem_json:
        return Response(b"CSRF token missing or invalid", status_code=403, media_type="text/plain")
    return error_response(ctx, error, request)


def is_authenticated(ctx: KestraSimContext, request: Request) -> bool:
    """Basic auth (header or ``BASIC_AUTH`` cookie) for everyone; bearer tokens in EE mode."""
    header = request.headers.get("authorization", "")
    if header and header == ctx.basic_header:
        return True
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return any(hmac.compare_digest(value.strip(), token) for token in ctx.tokens)
    if scheme.lower() != "basic":
        value = request.cookies.get("BASIC_AUTH", "")
        if not value:
            return False
    try:
        user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return hmac.compare_digest(user, ctx.username) and hmac.compare_digest(password, ctx.password)


def check_tenant(ctx: KestraSimContext, tenant: str) -> None:
    """OSS: only ``main`` (400); EE: one of the configured tenants."""
    if ctx.edition == "OSS":
        if tenant != "main":
            raise bad_request("Tenant must be 'main' for OSS version")
    elif tenant not in ctx.tenants:
        raise KestraSimNotFound(f"Tenant '{tenant}' not found")


def _csrf_refused(ctx: KestraSimContext, request: Request) -> bool:
    """2.0 line: cookie-authenticated non-GET requests need ``X-CSRF-TOKEN`` (header auth is exempt)."""
    return (
        ctx.profile.csrf_for_cookie_auth
        and request.method not in ("GET", "HEAD", "OPTIONS")
        and "authorization" not in request.headers
        and "x-csrf-token" not in request.headers
    )


def endpoint(
    ctx: KestraSimContext, handler: KestraSimHandler, *, public: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with authentication, tenant resolution and error rendering."""

    async def run(request: Request) -> Response:
        if not public and not is_authenticated(ctx, request):
            return unauthorized(ctx, request)
        if not public and _csrf_refused(ctx, request):
            return csrf_refusal(ctx, request)
        try:
            tenant = request.path_params.get("tenant", "main")
            if ctx.profile.tenant_in_path:
                check_tenant(ctx, tenant)
            return await handler(ctx, request, tenant)
        except KestraSimulatorHttpError as error:
            return error_response(ctx, error, request)
        except KestraSimError as error:
            if isinstance(error, KestraSimActionTimeout):
                # An injected executor timeout: the request journal lists it with the faults that fired.
                request.scope.setdefault(FAULTS_SCOPE_KEY, []).append("action_timeout")
            return error_response(ctx, http_error(error, ctx.profile), request)

    return run


def query_bool(request: Request, name: str, default: bool) -> bool:
    """A boolean query parameter (Micronaut: ``true``/``false``, anything else is 400)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise bad_request(f"Failed to convert argument [{name}] for value [{raw}]")


def query_int(request: Request, name: str, default: int | None) -> int | None:
    """An integer query parameter; a non-number is a 400 conversion error."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Failed to convert argument [{name}] for value [{raw}]") from None


def query_items(request: Request) -> list[tuple[str, str]]:
    """The query parameters as (name, value) pairs, in order (what the backend's filter parser reads)."""
    return list(request.query_params.multi_items())


def page_params(request: Request) -> tuple[int, int]:
    """``page`` (1-based, default 1) and ``size`` (default 10) of a paged search."""
    return query_int(request, "page", 1) or 0, query_int(request, "size", 10) or 0


async def read_text(request: Request) -> str:
    """The body as UTF-8 text."""
    return (await request.body()).decode("utf-8", "replace")


async def read_multipart(request: Request) -> dict[str, str | KestraSimUploadedFile]:
    """Multipart parts by name: text parts as str, parts with a filename as uploads. No body = no inputs.

    The legacy form (a part named ``files`` whose filename is the input id) is mapped to that input.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        if await request.body():
            raise KestraSimulatorHttpError(
                415,
                f"Content Type [{content_type.split(';')[0]}] not allowed. Allowed types: "
                "[multipart/form-data]",
                reason="Unsupported Media Type",
            )
        return {}
    form = await request.form(max_files=1000, max_fields=1000)
    parts: dict[str, str | KestraSimUploadedFile] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            upload = KestraSimUploadedFile(filename=value.filename or name, content=await value.read())
            parts[upload.filename if name == "files" else name] = upload
        else:
            parts[name] = str(value)
    return parts


def parse_label_params(values: list[str], *, allow_system: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """``key:value`` query values as Labels: ``RequestUtils.toMap`` (split on the first ``:``, trimmed; its
    refusals are ``HttpStatusException(422)``, 1.3.25 ``webserver/.../utils/RequestUtils.java`` @2a102a6a),
    then ``parseLabels``'s system-label refusal (an IllegalArgumentException)."""
    labels: dict[str, str] = {}
    for raw in values:
        key, colon, value = raw.partition(":")
        if not colon or not key:
            raise KestraSimHttpStatus(422, "Can't split the queryString parameter by ':'")
        key, value = key.strip(), value.strip()
        if not key or not value:
            raise KestraSimHttpStatus(422, "Can't have an empty part of queryString")
        if any(character.isspace() for character in key):
            raise KestraSimHttpStatus(422, "Key of queryString can't contain a whitespace character")
        if key in labels:
            raise KestraSimHttpStatus(
                422,
                "The queryString parameter keys contains duplicities: "
                f"Duplicate key {key} (attempted merging values {labels[key]} and {value})",
            )
        labels[key] = value
    for key, value in labels.items():
        if key.startswith("system.") and key not in allow_system:
            raise KestraSimIllegalArgument(
                f"System labels can only be set by Kestra itself, offending label: {key}={value}"
            )
    return [{"key": k, "value": v} for k, v in labels.items()]


def empty(status: int) -> Response:
    """A response without body."""
    return Response(b"", status_code=status)


def parsed_json(raw: bytes) -> Any:
    """Parse a JSON body or fail like Micronaut (422 ``Invalid json``)."""
    import json

    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise KestraSimulatorHttpError(422, str(exc), reason="Invalid json") from None
