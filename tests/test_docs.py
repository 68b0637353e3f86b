"""Docs that must not drift from the code: configuration keys, CLI, API paths and errors."""

import argparse
import re

import pytest

from cloud import cli, errors
from cloud.api import app as app_module
from cloud.api import auth
from cloud.api.app import create_app
from cloud.config import CloudSettings


def read(repo_root, name):
    return (repo_root / name).read_text(encoding="utf-8")


def test_every_cloud_setting_is_documented(repo_root):
    doc = read(repo_root, "docs/configuration.md")
    missing = [
        f"LOCKER_{name.upper()}"
        for name in CloudSettings.model_fields
        if f"`LOCKER_{name.upper()}`" not in doc
    ]
    assert missing == []


def test_every_cli_command_and_option_is_documented(repo_root):
    doc = read(repo_root, "docs/cli.md")
    parser = cli._parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, subparser in sub.choices.items():
        assert f"`locker-cloud {name}" in doc, name
        for action in subparser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in doc, f"{name} {flag}"


def _all_error_codes():
    codes = set()
    stack = [errors.ServiceError]
    while stack:
        cls = stack.pop()
        codes.add(cls.code)
        stack.extend(cls.__subclasses__())
    return codes


def test_every_error_code_is_documented(repo_root):
    doc = read(repo_root, "docs/api.md")
    codes = _all_error_codes() | set(app_module._HTTP_CODES.values())
    codes |= {"malformed_json", "validation_error", "payload_too_large", "internal_error"}
    assert {auth.MissingApiKey.code, auth.AdminOnly.code} <= codes
    codes.discard(errors.Conflict.code)  # an abstract base, never raised itself
    assert sorted(c for c in codes if f"`{c}`" not in doc) == []


def test_every_api_path_is_documented(repo_root):
    doc = read(repo_root, "docs/api.md")
    app = create_app(CloudSettings(database_url="postgresql://unused"))
    documented = {
        re.sub(r"\{[^}]+\}", "{}", p.split("?")[0])
        for p in re.findall(r"`(?:GET|POST|PUT|DELETE) (/api/v1/[^`]*)`", doc)
    }
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/"):
            assert re.sub(r"\{[^}]+\}", "{}", path) in documented, path


@pytest.mark.parametrize("script", ["scripts/demo", "scripts/check"])
def test_readme_opens_with_the_two_commands(repo_root, script):
    readme = read(repo_root, "README.md")
    block = readme.split("```")[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.strip()]
    assert commands == ["scripts/demo", "scripts/check"]
    assert (repo_root / script).exists()


def test_ci_runs_the_readme_test_command(repo_root):
    assert "scripts/check" in read(repo_root, ".ci/run")


def _response_schemas(doc: dict) -> dict[str, dict]:
    """Every schema a response refers to, directly or inside another one."""
    schemas = doc["components"]["schemas"]
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    walk(schemas[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for operations in doc["paths"].values():
        for operation in operations.values():
            walk(operation.get("responses", {}))
    return {name: schemas[name] for name in found}


def test_every_response_field_is_documented_in_the_bodies_section(repo_root):
    # issue 10: docs/api.md's "Bodies" has a heading per response schema of /openapi.json,
    # naming each of its fields, so the docs cannot drift from the responses.
    doc = read(repo_root, "docs/api.md")
    bodies = doc.split("\n## Bodies\n", 1)[1]
    sections: dict[str, str] = {}
    for part in ("\n" + bodies).split("\n### ")[1:]:
        heading, _, text = part.partition("\n")
        sections[heading.strip()] = text
    openapi = create_app(CloudSettings(database_url="postgresql://unused/none")).openapi()
    missing = []
    for name, schema in sorted(_response_schemas(openapi).items()):
        fields = schema.get("properties", {})
        if not fields:
            continue  # an enum
        text = sections.get(name)
        if text is None:
            missing.append(name)
            continue
        missing += [f"{name}.{field}" for field in fields if f"`{field}`" not in text]
    assert missing == []
