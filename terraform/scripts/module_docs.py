"""Write the Inputs and Outputs tables of each module README from its variables.tf and outputs.tf.

The tables sit between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` (terraform-docs' markers, so
terraform-docs can take over where it is installed). Everything outside the markers is hand-written.

    python terraform/scripts/module_docs.py          # rewrite the tables
    python terraform/scripts/module_docs.py --check  # exit 1 if a README is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TERRAFORM_DIR = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"

# Top-level blocks of a `terraform fmt`-formatted file end with "}" in column 0.
_BLOCK = re.compile(r'^(variable|output)\s+"([^"]+)"\s*\{\s*$(.*?)^\}', re.MULTILINE | re.DOTALL)
_DESCRIPTION = re.compile(r'^\s{2}description\s*=\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)
_ATTRIBUTE = re.compile(r"^\s{2}(type|default|sensitive)\s*=\s*", re.MULTILINE)


def _expression(body: str, name: str) -> str | None:
    """The expression of a top-level attribute of a block body, across lines when brackets stay open."""
    for match in _ATTRIBUTE.finditer(body):
        if match.group(1) != name:
            continue
        text = body[match.end() :]
        depth, end = 0, len(text)
        in_string = False
        for index, char in enumerate(text):
            if in_string:
                if char == '"' and text[index - 1] != "\\":
                    in_string = False
                continue
            if char == '"':
                in_string = True
            elif char in "[{(":
                depth += 1
            elif char in "]})":
                depth -= 1
            elif char == "\n" and depth == 0:
                end = index
                break
        return " ".join(line.strip() for line in text[:end].splitlines()).replace("[ ", "[").replace(", ]", "]")
    return None


def _cell(text: str) -> str:
    # HCL escapes quotes in strings; markdown needs only the table's pipes escaped.
    return text.replace('\\"', '"').replace("|", "\\|").replace("\n", " ")


def render(module_dir: Path) -> str:
    lines = [
        BEGIN,
        "## Inputs",
        "",
        "| Name | Description | Type | Default | Required |",
        "| --- | --- | --- | --- | :---: |",
    ]
    for match in _BLOCK.finditer((module_dir / "variables.tf").read_text()):
        _, name, body = match.groups()
        description = _DESCRIPTION.search(body)
        default = _expression(body, "default")
        type_expr = _expression(body, "type") or "any"
        lines.append(
            f"| `{name}` | {_cell(description.group(1) if description else '')} | `{_cell(type_expr)}` | "
            f"{'n/a' if default is None else '`' + _cell(default) + '`'} | {'yes' if default is None else 'no'} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "| --- | --- |"]
    for match in _BLOCK.finditer((module_dir / "outputs.tf").read_text()):
        _, name, body = match.groups()
        description = _DESCRIPTION.search(body)
        sensitive = " (sensitive)" if _expression(body, "sensitive") == "true" else ""
        lines.append(f"| `{name}` | {_cell(description.group(1) if description else '')}{sensitive} |")
    lines.append(END)
    return "\n".join(lines)


def update(readme: Path, tables: str) -> str:
    text = readme.read_text() if readme.exists() else f"# {readme.parent.name}\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return before + tables + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render module README input/output tables.")
    parser.add_argument(
        "--check", action="store_true", help="only report READMEs that are out of date (default: rewrite them)"
    )
    args = parser.parse_args(argv)
    stale = []
    for module_dir in sorted((TERRAFORM_DIR / "modules").iterdir()):
        if not (module_dir / "variables.tf").is_file():
            continue
        readme = module_dir / "README.md"
        wanted = update(readme, render(module_dir))
        if readme.exists() and readme.read_text() == wanted:
            continue
        if args.check:
            stale.append(str(readme.relative_to(TERRAFORM_DIR.parent)))
        else:
            readme.write_text(wanted)
            print(f"wrote {readme.relative_to(TERRAFORM_DIR.parent)}", file=sys.stderr)
    if stale:
        print("Out of date (run python terraform/scripts/module_docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
