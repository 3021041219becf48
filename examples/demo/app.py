"""The five demo endpoints of the seed's Flask app, ported to restkit.

Each answers exactly as the Flask original does, in status and JSON, for
every request in its docstrings and for the usual edge cases: missing
headers or query parameters fall back to the same default strings, a
non-integer id is a 404, a wrong method is a 405 with ``Allow``, a body
that is not JSON is a 415 and malformed JSON a 400.

Where the original fails with a 500 (``/post_example`` given JSON that is
not an object, so ``data.get`` raises), the port answers 400 with a JSON
error instead: no client input may produce a 500.  Errors are restkit's
JSON errors (``{"error": ...}``) rather than Flask's HTML pages.
"""

from __future__ import annotations

from typing import Any

from restkit import App, BadRequest, Request


def make_app() -> App:
    """Build the demo app."""
    app = App()

    @app.get("/get_example/<int:user_id>")
    def get_example(request: Request, user_id: int) -> dict[str, Any]:
        """GET /get_example/123?name=Alice with User-Agent -> the three echoed back."""
        name = request.query.get("name", "默认名字")
        user_agent = request.headers.get("User-Agent", "未知")
        return {"user_id": user_id, "name": name, "user_agent": user_agent}

    @app.post("/post_example")
    def post_example(request: Request) -> dict[str, Any]:
        """POST a JSON object {title, content} with Authorization -> echoed back."""
        data = request.json
        if not isinstance(data, dict):
            raise BadRequest("expected a JSON object with 'title' and 'content'")
        return {
            "title": data.get("title", "默认标题"),
            "content": data.get("content", "默认内容"),
            "authorization": request.headers.get("Authorization", "无授权"),
        }

    @app.put("/put_example/<int:item_id>")
    def put_example(request: Request, item_id: int) -> dict[str, Any]:
        """PUT a urlencoded form {name, description} with X-Custom-Header -> echoed back."""
        return {
            "item_id": item_id,
            "name": request.form.get("name", "默认名称"),
            "description": request.form.get("description", "默认描述"),
            "custom_header": request.headers.get("X-Custom-Header", "无自定义头"),
        }

    @app.delete("/delete_example")
    def delete_example(request: Request) -> Any:
        """DELETE ?confirm=true -> deleted; without it -> 400 {"message": "删除未确认"}."""
        confirm = request.query.get("confirm", "false").lower() == "true"
        if not confirm:
            return {"message": "删除未确认"}, 400
        return {"deleted": confirm, "authorization": request.headers.get("Authorization", "无授权")}

    @app.route("/api/resource/<resource_id>", methods=["GET", "POST", "PUT", "DELETE"])
    def api_resource(request: Request, resource_id: str) -> dict[str, Any]:
        """One resource, four methods: query on GET and DELETE, JSON on POST, a form on PUT."""
        if request.method == "POST":
            return {"method": "POST", "resource_id": resource_id, "data": request.json}
        if request.method == "PUT":
            return {"method": "PUT", "resource_id": resource_id, "data": request.form.to_dict()}
        if request.method == "DELETE":
            confirm = request.query.get("confirm", "false").lower() == "true"
            return {"method": "DELETE", "resource_id": resource_id, "confirm": confirm}
        return {"method": "GET", "resource_id": resource_id, "detail": request.query.get("detail", "basic")}

    return app


#: The app, for WSGI servers: ``gunicorn examples.demo.app:app``.
app = make_app()
