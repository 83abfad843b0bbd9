"""Every ```python block of README.md runs as written, and the values its comments show are what it gives.

The blocks are read from README.md at run time. The blocks of one ``## `` section (its ``###`` subsections
included) run in README order in one namespace, as notebook cells do: a later block may use the names an
earlier block of its section defined; each section starts from an empty namespace. Each section runs in a
temporary working directory holding the files its blocks read, with the network refused and TORCH_HOME,
HF_HOME, KERAS_HOME and our cache in a temporary folder holding, exactly where torch.hub, huggingface_hub
and Keras cache them, the published files of the tags its blocks load, made from the source libraries'
models at random init, and one torch thread. Models the blocks register are unregistered afterwards, and
torch's random state and thread count restored.

A top-level expression statement, or assignment to one name, whose comment (on its last line) starts with
a Python literal claims that value: ``list_models("*resnet*")  # ['inception_resnet_v1', ...]``,
``kept = ...  # [1, 3]: ...`` (a ``...`` inside a list or tuple stands for any run of items; a literal
followed by anything but ``;``, ``:`` or ``,`` is prose, not a claim). A failure names the README line."""

import ast
import io
import re
import shutil
import tokenize
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from inception_zoo import get_pretrained, registry
from inception_zoo.weights import hub
from inception_zoo.weights.keras import is_keras_file

README = Path(__file__).resolve().parents[1] / "README.md"

# Calls that load a tag's weights without naming it: the function's name -> the tag.
IMPLICIT_TAGS = {"activations": "inception_v3_fid.fid", "fid_model": "inception_v3_fid.fid"}
# Files the blocks read from the working directory: a tag's published file (made as for the cache) under
# another name, or None for a folder of photos.
LOCAL_FILES = {
    "googlenet-1378be20.pth": "inception_v1_bn.tv_in1k",  # torchvision's googlenet file, downloaded by hand
    "my_finetuned_xception.h5": "xception_tf.keras_in1k",  # a legacy Keras .h5 of Xception's layers
    "generated/": None,
    "real/": None,
}
NO_CLAIM = object()
PYTHON = ("python", "python3", "py")  # fence languages run as Python


@dataclass
class Block:
    section: str
    line: int  # README line of the block's first line of code
    code: str


def readme_blocks() -> list[Block]:
    """The ```python blocks of README.md, with the ``## `` section each is in."""
    blocks, section, body, language, start = [], "", None, "", 0
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if body is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                body, language, start = [], line[3:].strip(), number + 1
        elif line.startswith("```"):
            if (language.split() or [""])[0] in PYTHON:
                blocks.append(Block(section, start, "\n".join(body) + "\n"))
            body = None
        else:
            body.append(line)
    return blocks


def sections() -> dict[str, list[Block]]:
    groups: dict[str, list[Block]] = {}
    for block in readme_blocks():
        groups.setdefault(block.section, []).append(block)
    return groups


# ------------------------------------------------------------------------------------------ claims
def claimed(comment: str):
    """The value a comment claims: the longest Python literal it starts with, followed by nothing or by
    ``;``, ``:`` or ``,`` and more words; :data:`NO_CLAIM` for prose or a bare ``...``."""
    text = comment.lstrip("#").strip()
    for end in range(len(text), 0, -1):
        if text[end:].strip() and not re.match(r"\s*[;:,]", text[end:]):
            continue
        try:
            value = ast.literal_eval(text[:end].strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        return NO_CLAIM if value is Ellipsis else value
    return NO_CLAIM


def matches(value, claim) -> bool:
    """``value == claim``, where ``...`` in a claimed list or tuple matches any run of items, or none."""
    if isinstance(claim, (list, tuple)):
        if not isinstance(value, type(claim)):
            return False

        def run(values, claims) -> bool:
            if not claims:
                return not values
            if claims[0] is Ellipsis:
                return any(run(values[i:], claims[1:]) for i in range(len(values) + 1))
            return bool(values) and matches(values[0], claims[0]) and run(values[1:], claims[1:])

        return run(list(value), list(claim))
    try:
        return bool(value == claim)
    except Exception:  # an array's ambiguous truth value, say
        return False


def test_claims_are_read_from_comments():
    assert claimed("# [288, 768, 2048], [8, 16, 32]") == ([288, 768, 2048], [8, 16, 32])
    assert claimed("# (3, 299, 299); also mean, std") == (3, 299, 299)
    assert claimed("# 768, Mixed_6e's channels") == 768 and claimed("# True") is True
    for prose in ("# three feature maps", "# (B, 512), unit L2 norm", "# None of them", "# ...", "#"):
        assert claimed(prose) is NO_CLAIM
    assert matches(["a", "b", "c", "d"], ["a", ..., "d"]) and matches(["a", "d"], ["a", ..., "d"])
    assert not matches(["a", "b", "c"], ["a", ..., "d"]) and not matches(("a",), ["a"])


# ------------------------------------------------------------------------------------------ files
class Files:
    """Makes, once each, the source libraries' models at random init and the files the blocks read."""

    def __init__(self, scratch: Path):
        self.scratch, self.models = scratch, {}

    def peer(self, tag: str):
        """The source library's model of ``tag`` at random init, as its published file holds it."""
        if tag not in self.models:
            from inception_zoo.weights.sources import build_peer

            from test_pretrained import SOURCE_MODELS

            record, row = get_pretrained(tag)
            torch.manual_seed(0)
            build = SOURCE_MODELS.get(tag) or (lambda: build_peer(next(p for p in record.peers
                                                                       if p.source == row.source)))
            self.models[tag] = build()
        return self.models[tag]

    def write(self, tag: str, path: Path) -> None:
        """``tag``'s file at ``path``, in its source's format."""
        if is_keras_file(path.name):
            from test_keras import _save

            folder = self.scratch / tag
            folder.mkdir(parents=True, exist_ok=True)
            shutil.move(_save(self.peer(tag), folder, "legacy.h5"), path)  # keras.applications' .h5 layout
        else:
            torch.save(self.peer(tag).state_dict(), path)

    def cache(self, tag: str) -> None:
        """``tag``'s published file, where its download function caches it."""
        _, row = get_pretrained(tag)
        if row.url and is_keras_file(urlparse(row.url).path):
            folder = hub.keras_cache()
            folder.mkdir(parents=True, exist_ok=True)
            self.write(tag, folder / Path(urlparse(row.url).path).name)
        else:
            from test_pretrained import _place

            _place(tag, self.peer(tag).state_dict())

    @staticmethod
    def photos(folder: Path) -> None:
        """Two of scikit-image's photographs, different ones in each folder."""
        from PIL import Image
        from skimage import data

        folder.mkdir()
        names = ("astronaut", "chelsea") if folder.name == "generated" else ("coffee", "rocket")
        for name in names:
            Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")


def loaded_tags(tree: ast.AST) -> set[str]:
    """The tags whose published weights the code loads: ``create_model("<name>", pretrained=True)``, and
    the calls of :data:`IMPLICIT_TAGS`."""
    tags = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = getattr(node.func, "id", getattr(node.func, "attr", None))
        pretrained = any(k.arg == "pretrained" and isinstance(k.value, ast.Constant) and k.value.value is True
                         for k in node.keywords)
        if function == "create_model" and pretrained and node.args and isinstance(node.args[0], ast.Constant):
            record, row = get_pretrained(node.args[0].value)
            tags.add(f"{record.name}.{row.tag}")
        elif function in IMPLICIT_TAGS:
            tags.add(IMPLICIT_TAGS[function])
    return tags


def strings(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


# ------------------------------------------------------------------------------------------ running
def comments(block: Block) -> dict[int, str]:
    """README line -> the comment on it."""
    tokens = tokenize.generate_tokens(io.StringIO(block.code).readline)
    return {t.start[0] + block.line - 1: t.string for t in tokens if t.type == tokenize.COMMENT}


def readme_line(number: int) -> str:
    return README.read_text(encoding="utf-8").splitlines()[number - 1].strip()


def run(block: Block, namespace: dict) -> None:
    """Each top-level statement in turn, its claimed value compared; a failure names its line."""
    filename = str(README)
    try:
        tree = ast.parse(block.code, filename)
    except SyntaxError as error:
        raise AssertionError(f"README.md line {block.line + error.lineno - 1}: {error}") from None
    ast.increment_lineno(tree, block.line - 1)
    claims = comments(block)
    for statement in tree.body:
        claim, end = claimed(claims.get(statement.end_lineno, "")), statement.end_lineno
        targets = getattr(statement, "targets", [])
        target = targets[0].id if len(targets) == 1 and isinstance(targets[0], ast.Name) else None
        try:
            if isinstance(statement, ast.Expr) and claim is not NO_CLAIM:
                value = eval(compile(ast.Expression(statement.value), filename, "eval"), namespace)
            else:
                exec(compile(ast.Module([statement], []), filename, "exec"), namespace)
                if target is None or claim is NO_CLAIM:
                    continue
                value = namespace[target]
        except Exception as error:
            lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
            number = lines[-1] if lines else statement.lineno
            raise AssertionError(f"README.md line {number}: {readme_line(number)}\n"
                                 f"{type(error).__name__}: {error}") from error
        assert matches(value, claim), (f"README.md line {end}: {readme_line(end)}\n"
                                       f"gives {value!r}, the comment says {claim!r}")


@pytest.fixture
def isolated(caches, monkeypatch):
    """``caches``' empty download caches and refused network, a working directory beside them, one torch
    thread (single small forwards: a second thread mostly spins, doubling the CPU time on a busy machine);
    models registered inside are unregistered after, torch's random state and thread count are restored."""
    tmp_path, attempts = caches
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    records, aliases, threads = dict(registry._RECORDS), dict(registry._ALIASES), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield tmp_path, attempts
    finally:
        torch.set_num_threads(threads)
        registry._RECORDS.clear()
        registry._RECORDS.update(records)
        registry._ALIASES.clear()
        registry._ALIASES.update(aliases)


SECTIONS = sections()


def test_the_readme_has_python_blocks():
    assert sum(map(len, SECTIONS.values())) >= 10 and "Use" in SECTIONS


@pytest.mark.parametrize("section", list(SECTIONS), ids=lambda s: re.sub(r"\W+", "_", s).strip("_").lower())
def test_readme_section_runs_as_written(section, isolated):
    tmp_path, attempts = isolated
    blocks = SECTIONS[section]
    trees = [ast.parse(block.code) for block in blocks]
    files = Files(tmp_path / "scratch")
    for tag in sorted(set().union(*map(loaded_tags, trees))):
        files.cache(tag)
    for name in sorted(set().union(*map(strings, trees)) & set(LOCAL_FILES)):
        if LOCAL_FILES[name] is None:
            files.photos(Path(name))
        else:
            files.write(LOCAL_FILES[name], Path(name))
    files.models.clear()  # the peers' models freed before the blocks build their own
    namespace = {"__name__": "__readme__"}
    for block in blocks:
        run(block, namespace)
    assert not attempts, "a README block asked the network although its files were in the caches"
