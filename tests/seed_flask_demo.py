"""The seed's Flask demo (shared/seeds/000_*.txt, first code block), verbatim.

The oracle for tests/test_examples_demo.py: examples/demo must answer as this does.
"""
# fmt: off
import flask

app = flask.Flask(__name__)


@app.route("/get_example/<int:user_id>", methods=["GET"])
def get_example(user_id):
    """
    **方法：** GET

    **示例请求：**
    http:day3.ipynb
    GET /get_example/123?name=Alice HTTP/1.1
    Host: example.com
    User-Agent: Mozilla/5.0


    **示例响应：**
    json
    {
        "user_id": 123,
        "name": "Alice",
        "user_agent": "Mozilla/5.0"
    }

    """
    # 从查询参数获取 'name'
    name = flask.request.args.get("name", "默认名字")

    # 从 Headers 获取 'User-Agent'
    user_agent = flask.request.headers.get("User-Agent", "未知")

    return {"user_id": user_id, "name": name, "user_agent": user_agent}


@app.route("/post_example", methods=["POST"])
def post_example():
    """
    **方法：** POST

    **示例请求：**
    http
    POST /post_example HTTP/1.1
    Host: example.com
    Content-Type: application/json
    Authorization: Bearer token

    {
        "title": "示例标题",
        "content": "示例内容"
    }


    **示例响应：**
    json
    {
        "title": "示例标题",
        "content": "示例内容",
        "authorization": "Bearer token"
    }

    """
    # 从 JSON Body 获取数据
    data = flask.request.get_json()
    title = data.get("title", "默认标题")
    content = data.get("content", "默认内容")

    # 从 Headers 获取 'Authorization'
    auth = flask.request.headers.get("Authorization", "无授权")

    return {"title": title, "content": content, "authorization": auth}


@app.route("/put_example/<int:item_id>", methods=["PUT"])
def put_example(item_id):
    """
    **方法：** PUT

    **示例请求：**
    http
    PUT /put_example/456 HTTP/1.1
    Host: example.com
    Content-Type: application/x-www-form-urlencoded
    X-Custom-Header: 自定义值

    name=新名称&description=新描述


    **示例响应：**
    json
    {
        "item_id": 456,
        "name": "新名称",
        "description": "新描述",
        "custom_header": "自定义值"
    }

    """
    # 从表单数据获取
    name = flask.request.form.get("name", "默认名称")
    description = flask.request.form.get("description", "默认描述")

    # 从 Headers 获取 'X-Custom-Header'
    custom_header = flask.request.headers.get("X-Custom-Header", "无自定义头")

    return {
        "item_id": item_id,
        "name": name,
        "description": description,
        "custom_header": custom_header,
    }


@app.route("/delete_example", methods=["DELETE"])
def delete_example():
    """
    **方法：** DELETE

    **示例请求（确认删除）：**
    http
    DELETE /delete_example?confirm=true HTTP/1.1
    Host: example.com
    Authorization: Bearer token


    **示例响应（确认删除）：**
    json
    {
        "deleted": true,
        "authorization": "Bearer token"
    }


    **示例请求（未确认删除）：**
    http
    DELETE /delete_example HTTP/1.1
    Host: example.com


    **示例响应（未确认删除）：**
    json
    {
        "message": "删除未确认"
    }

    HTTP 状态码：400
    """
    # 从查询参数获取 'confirm'
    confirm = flask.request.args.get("confirm", "false").lower() == "true"

    # 从 Headers 获取 'Authorization'
    auth = flask.request.headers.get("Authorization", "无授权")

    if not confirm:
        return {"message": "删除未确认"}, 400

    return {"deleted": confirm, "authorization": auth}


@app.route(
    "/api/resource/<string:resource_id>", methods=["GET", "POST", "PUT", "DELETE"]
)
def api_resource(resource_id):
    """
    **方法：** GET, POST, PUT, DELETE

    **GET 请求示例：**
    http
    GET /api/resource/abc123?detail=full HTTP/1.1
    Host: example.com


    **GET 响应示例：**
    json
    {
        "method": "GET",
        "resource_id": "abc123",
        "detail": "full"
    }


    **POST 请求示例：**
    http
    POST /api/resource/abc123 HTTP/1.1
    Host: example.com
    Content-Type: application/json

    {
        "key": "value"
    }


    **POST 响应示例：**
    json
    {
        "method": "POST",
        "resource_id": "abc123",
        "data": {
            "key": "value"
        }
    }


    **PUT 请求示例：**
    http
    PUT /api/resource/abc123 HTTP/1.1
    Host: example.com
    Content-Type: application/x-www-form-urlencoded

    field=new%20value


    **PUT 响应示例：**
    json
    {
        "method": "PUT",
        "resource_id": "abc123",
        "data": {
            "field": "new value"
        }
    }


    **DELETE 请求示例：**
    http
    DELETE /api/resource/abc123?confirm=true HTTP/1.1
    Host: example.com


    **DELETE 响应示例：**
    json
    {
        "method": "DELETE",
        "resource_id": "abc123",
        "confirm": true
    }

    """
    if flask.request.method == "GET":
        # 从查询参数获取 'detail'
        detail = flask.request.args.get("detail", "basic")
        return {"method": "GET", "resource_id": resource_id, "detail": detail}

    elif flask.request.method == "POST":
        # 从 JSON Body 获取数据
        data = flask.request.get_json()
        return {"method": "POST", "resource_id": resource_id, "data": data}

    elif flask.request.method == "PUT":
        # 从表单数据获取
        data = flask.request.form.to_dict()
        return {"method": "PUT", "resource_id": resource_id, "data": data}

    elif flask.request.method == "DELETE":
        # 从查询参数获取 'confirm'
        confirm = flask.request.args.get("confirm", "false").lower() == "true"
        return {"method": "DELETE", "resource_id": resource_id, "confirm": confirm}

    else:
        return {"error": "不支持的HTTP方法"}, 405


if __name__ == "__main__":
    app.run(debug=True)

