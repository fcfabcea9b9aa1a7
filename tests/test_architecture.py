"""The package's shape: imports run downhill through the stages (docs/architecture.md), no import
loops, and one home for the twelve style names that the trained models' embeddings are keyed on.

The imports are read from the source with ``ast`` (module-level and inside functions alike), so
a lazy import is held to the same rule as any other.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hum2band"

#: Layer -> the layers it may import (besides itself). "hum2band" is the package's __init__.
ALLOWED = {
    "errors": set(),
    "music": {"errors"},
    "files": {"errors"},
    "listen": {"music", "files", "errors"},
    "compose": {"music", "files", "errors"},
    "perform": {"music", "files", "errors"},
    "train": {"compose", "listen", "music", "files", "errors"},
    "pipeline": {"listen", "compose", "perform", "music", "files", "errors", "hum2band"},
    "app": {"pipeline", "listen", "compose", "perform", "music", "files", "errors", "hum2band"},
    "hum2band": {"app"},  # __init__ (its public names load lazily, by string) and __main__
}
#: The one module of the app that may reach the trainers, and only when its command runs.
TRAIN_COMMAND = "hum2band.app.cli_train"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "hum2band"
    return parts[1]


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(imported hum2band module, line, at module level) for every import in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(n) for n in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` / try blocks at module level count as module level
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names if a.name.split(".")[0] == "hum2band"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "hum2band":
                continue
            found = []
            for a in node.names:  # `from . import grid` imports the submodule hum2band.x.grid
                sub = f"{mod}.{a.name}"
                found.append(sub if _is_module(sub) else mod)
        else:
            continue
        out += [(m, node.lineno, id(node) in top_level) for m in found]
    return out


def _is_module(dotted: str) -> bool:
    p = ROOT.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_import_runs_downhill():
    wrong = []
    for path in package_files():
        me = module_name(path)
        mine = layer_of(me)
        for target, line, top in imports_of(path):
            theirs = layer_of(target)
            if theirs == mine and mine != "hum2band":
                continue
            if theirs == "train" and me == TRAIN_COMMAND and not top:
                continue
            if theirs not in ALLOWED[mine]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target} ({theirs})")
    assert not wrong, "imports against the rule of docs/architecture.md:\n" + "\n".join(wrong)


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    # The checker itself: an import from music up into perform must be seen as a breach.
    fake_root = tmp_path
    (fake_root / "hum2band" / "music").mkdir(parents=True)
    (fake_root / "hum2band" / "perform").mkdir(parents=True)
    for d in ("hum2band", "hum2band/music", "hum2band/perform"):
        (fake_root / d / "__init__.py").write_text("")
    (fake_root / "hum2band" / "perform" / "render.py").write_text("X = 1\n")
    bad = fake_root / "hum2band" / "music" / "styles.py"
    bad.write_text("def f():\n    from ..perform import render\n    return render.X\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake_root)
    found = imports_of(bad)
    assert found == [("hum2band.perform.render", 2, False)]
    assert layer_of(found[0][0]) not in ALLOWED[layer_of(module_name(bad))]


def test_no_import_loops():
    graph: dict[str, set[str]] = {}
    for path in package_files():
        graph[module_name(path)] = {t for t, _, top in imports_of(path) if top}
    # Importing hum2band.x.y first imports its packages: those edges are real too.
    for mod in list(graph):
        parts = mod.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in graph and parent != mod:
                graph[mod].add(parent)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not loops, f"import loops: {loops}"


# ---- the twelve styles: one home ------------------------------------------------------------
#: The order the shipped models were trained with: their style embeddings are indexed by it.
TRAINED_STYLE_ORDER = ("pop", "rock", "ballad", "folk", "country", "swing", "jazz-ballad",
                       "bossa nova", "latin", "funk", "reggae", "waltz")


def test_style_names_have_one_home_that_the_models_agree_with():
    from hum2band.compose.harmony import grid as HG
    from hum2band.compose.parts import model as PM
    from hum2band.music import styles
    from hum2band.train import corpus

    assert styles.STYLE_NAMES == TRAINED_STYLE_ORDER
    assert HG.STYLES == ("",) + styles.STYLE_NAMES
    assert PM.STYLE_NAMES is styles.STYLE_NAMES
    assert corpus.STYLES is styles.STYLE_NAMES
    assert set(styles.STYLE_GROOVES) == set(styles.STYLE_NAMES)
    assert [s.name for s in styles.all_styles()] == list(styles.STYLE_NAMES)
    catalogue = json.loads((ROOT / "soundfonts" / "catalogue.json").read_text())
    assert list(catalogue["styles"]) == list(styles.STYLE_NAMES)


def test_shipped_weights_have_one_embedding_row_per_style():
    import torch

    from hum2band.compose.harmony import grid as HG
    from hum2band.music.styles import STYLE_NAMES

    parts = torch.load(ROOT / "models" / "parts.pt", map_location="cpu", weights_only=True)
    assert parts["state"]["style.weight"].shape[0] == len(STYLE_NAMES)
    harmony = torch.load(ROOT / "models" / "harmony.pt", map_location="cpu", weights_only=True)
    assert harmony["state"]["style_emb.weight"].shape[0] == len(HG.STYLES) == len(STYLE_NAMES) + 1


def test_checkpoints_record_their_style_order_and_refuse_another(tmp_path):
    import torch

    from hum2band.compose.parts import model as PM
    from hum2band.music.styles import STYLE_NAMES

    model = PM.PartsModel(PM.PartsModelConfig(d_model=16, n_heads=2, enc_layers=1, dec_layers=1,
                                              d_ff=32, d_tick=8, max_bars=4))
    path = tmp_path / "parts.pt"
    PM.save(model, path, meta={})
    blob = torch.load(path, map_location="cpu", weights_only=False)
    assert blob["styles"] == list(STYLE_NAMES)
    PM.load(path)  # same order: loads
    blob["styles"] = list(reversed(STYLE_NAMES))
    torch.save(blob, path)
    with pytest.raises(ValueError, match="retrain"):
        PM.load(path)


@pytest.mark.parametrize("alias,name", [("Bossa-Nova", "bossa nova"), ("bossa", "bossa nova"),
                                        ("Jazz Ballad", "jazz-ballad"), ("jazz_ballad", "jazz-ballad"),
                                        ("POP", "pop")])
def test_style_spellings(alias, name):
    from hum2band.music.styles import canonical_style, get_style

    assert canonical_style(alias) == name
    assert get_style(alias).name == name
