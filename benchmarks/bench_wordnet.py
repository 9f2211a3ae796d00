"""Loading WordNet 3.1 (`make corpora`) for the book: nltk's reader as it comes against ours.

Both read the same files (``corpora/nltk_data/corpora/wordnet``, prepared by
:func:`attention_study.wordnet.nltk_folder`) in a fresh process and parse every synset's text
(lemmas, gloss, examples):

- baseline: ``nltk.corpus.reader.wordnet.WordNetCorpusReader`` as it comes, which at start-up also
  maps the loaded release onto WordNet 3.0 for its multilingual data (reading ``index.sense``
  twice), then ``all_synsets()``;
- ours, first load: :func:`attention_study.wordnet.synsets` with no table on disk (the same reader
  with that mapping switched off; it then writes the table);
- ours, later loads: :func:`attention_study.wordnet.synsets` reading the table written before.

Medians of ``REPEATS`` runs, alternated.  Targets: a first load under 20 s on this machine and not
slower than nltk's, a later load under 2 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

REPEATS = 3

BASELINE = """
import warnings
warnings.simplefilter("ignore")
import nltk
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from attention_study import wordnet
root = wordnet.nltk_folder()
nltk.data.path.append(str(root))
r = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
n = sum(len(s.examples()) for s in r.all_synsets() if s.definition() is not None)
assert n == 48_571, n
"""

OURS = """
from attention_study import wordnet
assert sum(len(s.examples) for s in wordnet.synsets()) == 48_571
"""

FIRST = """
from attention_study import wordnet
wordnet._table_file().unlink(missing_ok=True)
""" + OURS


def _run(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def rows() -> list[dict]:
    _run(OURS)  # prepares the nltk folder once, outside the timings
    times: dict[str, list[float]] = {"baseline": [], "first": [], "later": []}
    for _ in range(REPEATS):
        times["baseline"].append(_run(BASELINE))
        times["first"].append(_run(FIRST))
        times["later"].append(_run(OURS))
    baseline, first, later = (statistics.median(times[k]) for k in ("baseline", "first", "later"))
    name = "WordNet 3.1 load: reader + every synset's text (fresh process)"
    return [
        {"name": name + ", first", "baseline_s": baseline, "ours_s": first,
         "ratio": baseline / first, "target": "ours < 20 s, ratio >= 1",
         "met": first < 20 and baseline / first >= 1},
        {"name": name + ", later", "baseline_s": baseline, "ours_s": later,
         "ratio": baseline / later, "target": "ours < 2 s", "met": later < 2},
    ]


if __name__ == "__main__":
    for row in rows():
        print(row)
