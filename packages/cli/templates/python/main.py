# The __NAME__ function: answers POST {"name": "x"} with a greeting of x.
# fn_contract is the platform's Python kit (standard library only): the runtimes put it on the path.
import json

from fn_contract import HttpError, json_response, serve_function


def handler(request, context):
    if request["method"] != "POST":
        raise HttpError(405, 'use POST with {"name": ...}')
    try:
        name = json.loads(request["body"] or "{}").get("name")
    except (ValueError, AttributeError):
        raise HttpError(400, "body must be a JSON object")
    if not isinstance(name, str) or not name:
        raise HttpError(400, 'missing "name"')
    context.log.info("greeting", person=name)
    return json_response(200, {"greeting": f"Hello, {name}!", "instance": context.instance})


if __name__ == "__main__":
    serve_function(handler)
