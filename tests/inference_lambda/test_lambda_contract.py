"""The Lambda's generated copies of contracts/api.json are current; openapi.json matches the routes and the contract."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lambda_test_support import REPO_ROOT, SERVICE_DIR

GENERATOR = REPO_ROOT / "scripts" / "gen_contracts.py"
OPENAPI = json.loads((SERVICE_DIR / "src" / "inference_lambda" / "openapi.json").read_text())


@pytest.fixture(scope="module")
def gen_contracts():
    """scripts/gen_contracts.py, imported by path (it is no package's module)."""
    if not GENERATOR.is_file():
        pytest.skip("not run from a repository checkout (scripts/gen_contracts.py is absent)")
    spec = importlib.util.spec_from_file_location("gen_contracts", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("group", ["lambda", "openapi", "readme"])
def test_generated_files_match_the_contract(gen_contracts, group, app_module):
    # openapi.json is built from the resolver's routes: the app module the other tests use is the one read.
    problems = gen_contracts.run(check=True, only=group)
    assert not problems, "\n".join(problems) + "\nfix: python scripts/gen_contracts.py (in the lambda env)"


def test_openapi_paths_and_methods_are_the_apps_routes(app_module):
    routes = {(route.openapi_path, route.method.lower()) for route in app_module.app._static_routes + app_module.app._dynamic_routes}
    documented = {(path, method) for path, operations in OPENAPI["paths"].items() for method in operations}

    assert documented == routes
    assert set(app_module.ROUTE_METHODS) == {path for path, _ in routes}  # the 405/404 table too


def test_openapi_lists_every_code_of_the_contract_with_its_status():
    contract = json.loads((REPO_ROOT / "contracts" / "api.json").read_text()) if (REPO_ROOT / "contracts").is_dir() else None
    if contract is None:
        pytest.skip("not run from a repository checkout (contracts/api.json is absent)")
    code_schema = OPENAPI["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]

    assert set(code_schema["enum"]) == set(contract["errors"])
    predict = OPENAPI["paths"]["/predict"]["post"]["responses"]
    for code, error in contract["errors"].items():
        assert f"{code} ({error['status']})" in code_schema["description"], code
        if code != "not_found":  # no path, so no operation's answer
            assert code in predict[str(error["status"])]["description"], code


def test_openapi_describes_the_api_key_and_the_gateways_403_and_429():
    scheme = OPENAPI["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "x-api-key"}
    operations = {(path, method): op for path, ops in OPENAPI["paths"].items() for method, op in ops.items()}
    # As terraform/modules/api: every method needs the key except the page (GET /).
    for (path, _method), operation in operations.items():
        assert operation["security"] == ([] if path == "/" else [{"ApiKey": []}]), path
        assert "429" in operation["responses"], path
        assert ("403" in operation["responses"]) == (path != "/"), path
    assert "forbidden" in operations[("/predict", "post")]["responses"]["403"]["description"]
    assert {"throttled", "quota_exceeded"} <= set(operations[("/health", "get")]["responses"]["429"]["description"].replace(",", " ").replace(".", " ").split())


# -- servers: the address the document is served from ---------------------------------------------------


def served(invoke, event):
    status, headers, body = invoke(event)
    assert status == 200, body
    assert {**body, "servers": OPENAPI["servers"]} == OPENAPI  # only servers is filled in
    return [server["url"] for server in body["servers"]]


def openapi_event(event, name: str, **changes):
    loaded = event(name)
    if "rawPath" in loaded:
        loaded["rawPath"] = loaded["rawPath"].rsplit("/", 1)[0] + "/openapi.json"
        loaded["requestContext"]["http"]["method"] = "GET"
        loaded["routeKey"] = "$default"
    else:
        loaded.update(path=loaded["path"].rsplit("/", 1)[0] + "/openapi.json", resource="/openapi.json", httpMethod="GET")
        context = loaded["requestContext"]
        context.update(path=context["path"].rsplit("/", 1)[0] + "/openapi.json", httpMethod="GET")
    loaded.update(body=None, isBase64Encoded=False)
    loaded.update(changes)
    return loaded


@pytest.mark.parametrize(
    "name,url,env",
    [
        ("predict_json_image.json", "https://abcdef1234.execute-api.eu-west-1.amazonaws.com/prod", {}),
        ("predict_custom_domain.json", "https://api.example.com/dogs", {}),
        ("v2_predict_json_image.json", "https://abcdef1234.execute-api.eu-west-1.amazonaws.com", {}),
        ("v2_predict_named_stage.json", "https://abcdef1234.execute-api.eu-west-1.amazonaws.com/prod", {}),
        # HTTP API behind a base path mapping: routed only when API_BASE_PATHS names it (test_lambda_hostile_input).
        ("v2_predict_custom_domain.json", "https://api.example.com/dogs", {"API_BASE_PATHS": "/dogs"}),
    ],
)
def test_servers_is_the_host_and_stage_the_request_came_in_on(invoke, event, reload_app, name, url, env):
    if env:
        reload_app(**env)
    assert served(invoke, openapi_event(event, name)) == [url]


def test_servers_behind_the_local_front(invoke):
    from inference_lambda.local_front import build_proxy_event

    for base_path, url in [("", "http://127.0.0.1:3000"), ("/prod", "http://127.0.0.1:3000/prod")]:
        event = build_proxy_event(
            method="GET",
            path="/openapi.json",
            query_items=[],
            header_items=[("Host", "127.0.0.1:3000")],
            body=b"",
            source_ip="127.0.0.1",
            base_path=base_path,
        )
        assert served(invoke, event) == [url]


@pytest.mark.parametrize("host", ['evil.example"/><script>', "a b", "x" * 300, ""])
def test_a_host_header_that_is_no_host_name_is_not_written_into_servers(invoke, event, host):
    loaded = openapi_event(event, "predict_json_image.json")
    loaded["headers"]["Host"] = host
    loaded["multiValueHeaders"]["Host"] = [host]
    loaded["requestContext"]["domainName"] = host

    assert served(invoke, loaded) == ["/prod"]
