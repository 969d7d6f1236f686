"""One version: package.xml; setup.py reads it and ivif_ros.__version__ is the installed one."""
from __future__ import annotations

import ast
import xml.etree.ElementTree as ElementTree
from importlib.metadata import version
from pathlib import Path

import ivif_ros

REPO = Path(__file__).resolve().parents[1]


def test_version_comes_from_package_xml() -> None:
    declared = ElementTree.parse(REPO / "package.xml").findtext("version").strip()
    assert declared.count(".") == 2 and all(part.isdigit() for part in declared.split("."))
    assert version("ivif_ros") == declared == ivif_ros.__version__
    setup_tree = ast.parse((REPO / "setup.py").read_text())
    setup_literals = [n.value for n in ast.walk(setup_tree) if isinstance(n, ast.Constant)]
    assert declared not in setup_literals  # not written a second time
