"""Every error outside the Django admin is the API's JSON error, whoever answered it.

Django answers some errors before any view runs, as HTML: an unknown URL (404), a body or URL it refuses
(400), a failing view (500), and in development its debug pages, which show the settings. This middleware,
the outermost, turns any such answer into `{"error": {"code", "message"}}` with the same status."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from exchange.api_errors import status_error_body

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
