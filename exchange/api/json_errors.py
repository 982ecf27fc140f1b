"""Every error outside the Django admin is one JSON shape:
`{"error": {"code": "<stable code>", "message": "<for people>", "fields": {"<field>": "<message>"}}}`.

`handle_exception` is DRF's exception handler, for what a view raises. Domain errors
(`exchange.errors.DomainError`: orders, migrations) carry their code and status; DRF's own errors keep their
status and get a stable code (`invalid_request` for any validation error, `malformed_body` for a body that
does not parse, otherwise DRF's code such as `not_authenticated`, `not_found`, `method_not_allowed`).

`JsonErrorsMiddleware` covers what Django answers before any view runs, as HTML: an unknown URL (404), a body
or URL it refuses (400), a failing view (500), and in development its debug pages, which show the settings. It
turns any such answer into the same body with the same status.
"""
from collections.abc import Callable

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from exchange.errors import DomainError

HTML_KEPT_UNDER = ("/backoffice/",)   # the admin's own pages, for people in a browser
# No address of the exchange comes near this; a longer one is refused before anything reads it. (Longer than
# the HTTP server's own buffer, 64 KiB for Granian, it is refused there: 414 without a body.)
MAX_URL_BYTES = 8192


class JsonErrorsMiddleware:
    """The outermost middleware: refuses an overlong address, and answers any error as JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if len(request.get_full_path()) > MAX_URL_BYTES:
            return json_error(414)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        if request.path.startswith(HTML_KEPT_UNDER):
            return response
        return json_error(response.status_code, request.path if response.status_code == 404 else None)


def json_error(status: int, path: str | None = None) -> JsonResponse:
    body = status_error_body(status)
    if path is not None:
        body["error"]["message"] = f"Nothing is found at {path[:200]}."
    return JsonResponse(body, status=status)


CODES_BY_EXCEPTION = (
    (exceptions.ValidationError, "invalid_request"),
    (exceptions.ParseError, "malformed_body"),
)


def handle_exception(error: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER. Returns None for unexpected errors, which Django answers (and logs) as 500."""
    if isinstance(error, RequestDataTooBig):
        return Response(status_error_body(413), status=413)
    if isinstance(error, DomainError):
        response = Response(error_body(error.code, error.message, error.fields()), status=error.status_code)
        if error.retry_after_seconds is not None:
            response["Retry-After"] = str(error.retry_after_seconds)
        return response
    response = drf_exception_handler(error, context)
    if response is None:
        return None
    api_error = _as_api_exception(error)
    fields = flatten_errors(api_error.detail) if isinstance(api_error, exceptions.ValidationError) else {}
    message = fields.pop("", None) or _message(api_error, fields)
    response.data = error_body(_code(api_error), message, fields)
    return response


# The errors that come with no domain error to say more: answered by Django or the server before a view runs.
STATUS_ERRORS = {
    400: ("bad_request", "The request could not be read."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Nothing is found at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("request_too_large", "The request body is larger than the 2.5 MB the API reads."),
    414: ("url_too_long", "The address is longer than the 8192 bytes the API reads."),
    500: ("internal_error", "The server failed to answer; the error is logged."),
}


def status_error_body(status: int) -> dict:
    return error_body(*STATUS_ERRORS.get(status, ("error", "The request failed.")))


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict:
    body: dict[str, object] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def flatten_errors(detail, prefix: str = "") -> dict[str, str]:
    """DRF's nested error details as one flat map: `{"orders[2].price": "..."}`. Errors about an object as a
    whole (`non_field_errors`) go under the object's own path, `""` at the top."""
    if isinstance(detail, dict):
        flat = {}
        for key, value in detail.items():
            flat.update(flatten_errors(value, _child_path(prefix, key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(flatten_errors(item, f"{prefix}[{index}]"))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix: " ".join(str(message) for message in messages)}


def _child_path(prefix: str, key) -> str:
    if key == api_settings.NON_FIELD_ERRORS_KEY:
        return prefix
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _as_api_exception(error: Exception) -> exceptions.APIException:
    # DRF's handler answers Django's Http404 and PermissionDenied as its own NotFound and PermissionDenied.
    if isinstance(error, Http404):
        return exceptions.NotFound()
    if isinstance(error, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return error


def _code(error: exceptions.APIException) -> str:
    for kind, code in CODES_BY_EXCEPTION:
        if isinstance(error, kind):
            return code
    return getattr(error.detail, "code", None) or error.default_code


def _message(error: exceptions.APIException, fields: dict[str, str]) -> str:
    if not fields:
        return str(error.detail)
    return " ".join(f"{name}: {message}" for name, message in fields.items())
