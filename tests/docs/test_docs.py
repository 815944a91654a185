"""The documentation: README links resolve, every setting is documented, the generated references cover
every REST operation and NATS subject. (`make docs` builds the site strictly: broken links inside docs/.)"""

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _reference_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_relative_link_of_the_readme_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    relative = [target for target in targets if not re.match(r"[a-z]+:", target)]
    assert relative, "the README links into docs/"
    missing = [target for target in relative if not (ROOT / target).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_every_repository_path_the_docs_name_exists() -> None:
    """A file or folder named in full (`services/…`, `libs/…`, `tests/…`) must exist: moves update docs."""
    roots = ("services/", "libs/", "tests/", "examples/", "benchmarks/", "scripts/", "docker/", "src/")
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    missing = [
        f"{page.relative_to(ROOT)}: {path}"
        for page in pages
        for path in sorted(set(re.findall(r"`([^`\s]+)`", page.read_text())))
        if path.startswith(roots)
        and not any(mark in path for mark in "{}*<>…")
        and not (ROOT / path.rstrip("/")).exists()
    ]
    assert not missing, "docs name paths that do not exist:\n" + "\n".join(missing)


def test_every_setting_is_in_the_settings_reference() -> None:
    source = (ROOT / "libs" / "common" / "skillrelay_common" / "settings.py").read_text()
    names = set(re.findall(r'_[a-z]+\(env, "([A-Z_]+)"', source))
    assert len(names) > 10, names
    page = (ROOT / "docs" / "reference" / "settings.md").read_text()
    undocumented = sorted(name for name in names if f"`SKILLRELAY_{name}`" not in page)
    assert not undocumented, (
        f"add a row for {', '.join('SKILLRELAY_' + n for n in undocumented)} to docs/reference/settings.md"
    )


def test_the_rest_reference_lists_every_operation_of_the_openapi_document() -> None:
    generator = _reference_generator()
    document = generator.registry_openapi()
    page = generator.rest_page(document)
    for path, item in document["paths"].items():
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                assert f"### `{method.upper()} {path}`" in page
    for name in document["components"]["schemas"]:
        assert f"### {name} {{#" in page


def test_the_nats_reference_lists_every_subject_of_the_asyncapi_document() -> None:
    generator = _reference_generator()
    document = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    page = generator.nats_page(document)
    addresses = {
        document["channels"][generator._ref_name(operation["channel"])]["address"]
        for operation in document["operations"].values()
    }
    assert len(addresses) > 20
    for address in addresses:
        assert f"| `{address}` |" in page
    named = [name for name in document["components"]["schemas"] if ":" not in name]
    assert "ResolveIntegration" in named
    for name in named:  # FastStream names an unnamed payload <channel>:Message:Payload
        assert f"### {name} {{#" in page
