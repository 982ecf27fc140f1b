"""Every error outside the Django admin is the API's JSON error, whoever answered it.

Django answers some errors before any view runs, as HTML: an unknown URL (404), a body or URL it refuses
(400), a failing view (500), and in development its debug pages, which show the settings. This middleware,
the outermost, turns any such answer into `{"error": {"code", "message"}}` with the same status."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from exchange.api_errors import error_body

HTML_KEPT_UNDER = ("/backoffice/",)   # the admin's own pages, for people in a browser
CODES = {400: ("bad_request", "The request could not be read."),
         403: ("permission_denied", "You do not have permission to perform this action."),
         404: ("not_found", "Nothing is found at this address."),
         405: ("method_not_allowed", "This method is not allowed here."),
         413: ("request_too_large", "The request is too large."),
         500: ("internal_error", "The server failed to answer; the error is logged.")}


class JsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        if request.path.startswith(HTML_KEPT_UNDER):
            return response
        code, message = CODES.get(response.status_code, ("error", "The request failed."))
        if response.status_code == 404:
            message = f"Nothing is found at {request.path}."
        return JsonResponse(error_body(code, message), status=response.status_code)
