"""The error answers of the OpenAPI schema, written once for every operation instead of on each view, and
`ERROR`, the answer a view names for the statuses it documents itself.

Every error of the API has the same body (`exchange.api.json_errors`); which ones an operation can give follows
from its shape: a body or parameters can be invalid (400), a body can be of the wrong media type (415), an
authenticated operation can be refused a caller without credentials (401) or without the permission (403),
and a path with an id or symbol can name nothing (404). Statuses a view documents itself (409, 202) stay.
"""
from drf_spectacular.utils import OpenApiResponse

from exchange.api.serializers import ErrorSerializer

ERROR = OpenApiResponse(ErrorSerializer, description="See the error's `code` and `message`.")
ERROR_RESPONSE = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def document_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular's postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in possible_errors(path, operation):
                responses.setdefault(status, {**ERROR_RESPONSE, "description": description})
    return result


def possible_errors(path: str, operation: dict) -> list[tuple[str, str]]:
    errors = []
    if operation.get("parameters") or operation.get("requestBody"):
        errors.append(("400", "The request is malformed or breaks a rule; see the error's `code` and `fields`."))
    if {} not in operation.get("security", [{}]):
        errors.append(("401", "No credentials, or credentials that are not valid."))
        errors.append(("403", "The credentials do not allow this operation."))
    if "{" in path:
        errors.append(("404", "Nothing is found at this path."))
    elif any(parameter.get("name") == "page" for parameter in operation.get("parameters", [])):
        errors.append(("404", "There is no such page."))
    if operation.get("requestBody"):
        errors.append(("415", "The body is not JSON."))
    errors.append(("429", "Too many requests: wait the `Retry-After` seconds."))
    return errors
