"""A seeded generator of English-like text with known structure (the offline zoo's corpus).

The offline causal model is trained on text this module writes, so that the book knows exactly
what there is to learn in it. The text is built for study, from a small grammar of our own:

Vocabulary
    About four hundred words: named characters, countable nouns (singular and plural), verbs
    (third-person singular and plural present forms, transitive and intransitive), adjectives,
    adverbs, prepositions and determiners (see the module-level word lists).

Grammar
    A sentence is a clause ``subject verb [object] [prepositional phrase]`` ending in ``.``, ``!``
    or ``?`` (questions are ``does/do`` inversions). A subject is a name or a noun phrase
    ``determiner [adjective] noun [relative clause]``; a relative clause is ``that verb object``.
    Verbs agree with their subject in number: ``the fox runs`` / ``the foxes run`` (also inside
    relative clauses). Clauses may be joined with ``, and``; adverbs, quoted speech and commas
    give punctuation.

Recurrence (what a causal model can learn to copy)
    Each passage casts a few named characters (:attr:`CorpusRecipe.names_per_passage`) who are
    the only names in it (by default invented from syllables afresh in every passage, like
    ``Velkaris``, so that a name's continuation can only be predicted by copying), and fixes a
    few *motif* noun phrases (``the old silver lantern``) that recur. With probability
    :attr:`CorpusRecipe.echo_rate` a sentence is an *echo*: a character repeats an earlier
    sentence of the passage word for word (``Ada said again: "..."``), and with probability
    :attr:`CorpusRecipe.recital_rate` a passage holds a *recital*: a list of random words read
    out by one character and repeated verbatim by another. Echoes and recitals make verbatim
    copying the best prediction, which is what induction heads do (Olsson et al. 2022,
    "In-context learning and induction heads").

Planted expressions (ground truth for the collocation chapters)
    :func:`planted_expressions` lists 24 multi-word expressions of 2–5 words (idioms such as
    ``pulling rabbits out of hats`` and collocations such as ``strong coffee``). Each sentence,
    independently with probability :attr:`CorpusRecipe.expression_rate`, carries exactly one of
    them, chosen uniformly; echoes copy whatever their source carried. So in non-echo sentences
    each expression appears at the rate ``expression_rate / 24`` per sentence. The words of the
    expressions are kept out of the free vocabulary, so outside the planted slots they never occur.

Determinism
    Passage ``i`` of seed ``s`` is drawn from its own ``random.Random`` seeded with a number
    derived from ``(s, i)`` (Python's Mersenne Twister is the same on every platform), so
    ``generate_passages(n, s)`` is a prefix of ``generate_passages(n + k, s)`` and the text is the
    same on every machine.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass

__all__ = [
    "ADJECTIVES",
    "ADVERBS",
    "NAMES",
    "NOUNS",
    "PREPOSITIONS",
    "VERBS_INTRANSITIVE",
    "VERBS_TRANSITIVE",
    "CorpusRecipe",
    "count_expression",
    "generate_passage",
    "generate_passages",
    "planted_expressions",
    "vocabulary",
]

NAMES: tuple[str, ...] = (
    "Ada",
    "Boris",
    "Clara",
    "Dmitri",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Irene",
    "Jonas",
    "Katya",
    "Leon",
    "Mira",
    "Nils",
    "Olga",
    "Pavel",
    "Rosa",
    "Stefan",
    "Tamar",
    "Ulrich",
    "Vera",
    "Walter",
    "Yusuf",
    "Zora",
    "Anton",
    "Bianca",
    "Cyril",
    "Dora",
    "Emil",
    "Freya",
)

# (singular, plural)
NOUNS: tuple[tuple[str, str], ...] = tuple(
    (w, p)
    for w, p in [
        ("fox", "foxes"),
        ("dog", "dogs"),
        ("cat", "cats"),
        ("bird", "birds"),
        ("horse", "horses"),
        ("teacher", "teachers"),
        ("farmer", "farmers"),
        ("sailor", "sailors"),
        ("doctor", "doctors"),
        ("baker", "bakers"),
        ("child", "children"),
        ("woman", "women"),
        ("man", "men"),
        ("king", "kings"),
        ("queen", "queens"),
        ("soldier", "soldiers"),
        ("painter", "painters"),
        ("student", "students"),
        ("neighbour", "neighbours"),
        ("stranger", "strangers"),
        ("river", "rivers"),
        ("mountain", "mountains"),
        ("forest", "forests"),
        ("village", "villages"),
        ("city", "cities"),
        ("garden", "gardens"),
        ("house", "houses"),
        ("bridge", "bridges"),
        ("road", "roads"),
        ("field", "fields"),
        ("window", "windows"),
        ("door", "doors"),
        ("table", "tables"),
        ("chair", "chairs"),
        ("lamp", "lamps"),
        ("lantern", "lanterns"),
        ("book", "books"),
        ("letter", "letters"),
        ("map", "maps"),
        ("key", "keys"),
        ("box", "boxes"),
        ("basket", "baskets"),
        ("apple", "apples"),
        ("loaf", "loaves"),
        ("cup", "cups"),
        ("bottle", "bottles"),
        ("coin", "coins"),
        ("ring", "rings"),
        ("clock", "clocks"),
        ("bell", "bells"),
        ("ship", "ships"),
        ("boat", "boats"),
        ("cart", "carts"),
        ("wheel", "wheels"),
        ("stone", "stones"),
        ("tree", "trees"),
        ("flower", "flowers"),
        ("leaf", "leaves"),
        ("cloud", "clouds"),
        ("star", "stars"),
        ("song", "songs"),
        ("story", "stories"),
        ("dream", "dreams"),
        ("question", "questions"),
        ("answer", "answers"),
        ("machine", "machines"),
        ("engine", "engines"),
        ("tower", "towers"),
        ("castle", "castles"),
        ("market", "markets"),
        ("shop", "shops"),
        ("school", "schools"),
        ("church", "churches"),
        ("island", "islands"),
        ("valley", "valleys"),
        ("lake", "lakes"),
        ("coat", "coats"),
        ("hat", "hats"),
        ("shoe", "shoes"),
        ("glove", "gloves"),
        ("candle", "candles"),
        ("mirror", "mirrors"),
        ("picture", "pictures"),
        ("garden gate", "garden gates"),
        ("owl", "owls"),
        ("wolf", "wolves"),
        ("bear", "bears"),
        ("mouse", "mice"),
        ("goose", "geese"),
        ("sheep", "sheep"),
        ("fish", "fish"),
        ("traveller", "travellers"),
        ("merchant", "merchants"),
        ("musician", "musicians"),
        ("thief", "thieves"),
        ("judge", "judges"),
        ("pilot", "pilots"),
        ("miller", "millers"),
        ("wall", "walls"),
        ("roof", "roofs"),
        ("well", "wells"),
        ("fence", "fences"),
        ("drum", "drums"),
        ("violin", "violins"),
        ("kettle", "kettles"),
        ("spoon", "spoons"),
        ("pocket", "pockets"),
        ("ladder", "ladders"),
        ("rope", "ropes"),
        ("sail", "sails"),
    ]
)

# (third-person singular, plural/base)
VERBS_TRANSITIVE: tuple[tuple[str, str], ...] = (
    ("sees", "see"),
    ("finds", "find"),
    ("carries", "carry"),
    ("follows", "follow"),
    ("watches", "watch"),
    ("paints", "paint"),
    ("builds", "build"),
    ("opens", "open"),
    ("closes", "close"),
    ("helps", "help"),
    ("chases", "chase"),
    ("likes", "like"),
    ("fears", "fear"),
    ("remembers", "remember"),
    ("forgets", "forget"),
    ("loses", "lose"),
    ("keeps", "keep"),
    ("sells", "sell"),
    ("buys", "buy"),
    ("hides", "hide"),
    ("mends", "mend"),
    ("cleans", "clean"),
    ("counts", "count"),
    ("describes", "describe"),
    ("visits", "visit"),
    ("greets", "greet"),
    ("answers", "answer"),
    ("pushes", "push"),
    ("pulls", "pull"),
    ("lifts", "lift"),
    ("drops", "drop"),
    ("holds", "hold"),
    ("draws", "draw"),
    ("writes", "write"),
    ("reads", "read"),
    ("guards", "guard"),
    ("admires", "admire"),
    ("questions", "question"),
    ("ignores", "ignore"),
    ("calls", "call"),
    ("trusts", "trust"),
    ("teaches", "teach"),
    ("borrows", "borrow"),
    ("returns", "return"),
    ("studies", "study"),
    ("measures", "measure"),
    ("wraps", "wrap"),
    ("polishes", "polish"),
)
VERBS_INTRANSITIVE: tuple[tuple[str, str], ...] = (
    ("sleeps", "sleep"),
    ("runs", "run"),
    ("waits", "wait"),
    ("sings", "sing"),
    ("laughs", "laugh"),
    ("smiles", "smile"),
    ("dances", "dance"),
    ("walks", "walk"),
    ("listens", "listen"),
    ("wanders", "wander"),
    ("works", "work"),
    ("rests", "rest"),
    ("whispers", "whisper"),
    ("shouts", "shout"),
    ("travels", "travel"),
    ("arrives", "arrive"),
    ("leaves", "leave"),
    ("falls", "fall"),
    ("grows", "grow"),
    ("shines", "shine"),
    ("trembles", "tremble"),
    ("hesitates", "hesitate"),
    ("returns", "return"),
    ("disappears", "disappear"),
)
ADJECTIVES: tuple[str, ...] = (
    "old",
    "young",
    "small",
    "large",
    "quiet",
    "loud",
    "bright",
    "dark",
    "green",
    "red",
    "blue",
    "yellow",
    "silver",
    "golden",
    "wooden",
    "broken",
    "empty",
    "clever",
    "patient",
    "curious",
    "gentle",
    "brave",
    "tired",
    "hungry",
    "careful",
    "famous",
    "distant",
    "narrow",
    "wide",
    "ancient",
    "modern",
    "strange",
    "familiar",
    "cold",
    "warm",
    "wet",
    "dusty",
    "shiny",
    "soft",
    "sharp",
    "round",
    "tall",
    "short",
    "friendly",
    "lonely",
    "busy",
    "lazy",
    "proud",
    "honest",
    "secret",
    "hidden",
    "simple",
    "pale",
    "noisy",
    "calm",
    "wild",
    "rusty",
    "gray",
)
ADVERBS: tuple[str, ...] = (
    "quietly",
    "slowly",
    "quickly",
    "happily",
    "sadly",
    "carefully",
    "suddenly",
    "often",
    "rarely",
    "always",
    "never",
    "sometimes",
    "gladly",
    "patiently",
    "boldly",
    "softly",
)
PREPOSITIONS: tuple[str, ...] = (
    "in",
    "on",
    "under",
    "near",
    "behind",
    "beside",
    "across",
    "beyond",
    "inside",
    "along",
    "past",
    "toward",
    "around",
    "above",
)
SPEECH_VERBS: tuple[str, ...] = ("said again", "repeated", "echoed", "whispered again")

# Planted expressions: (text, slot). Slots say where the grammar can place them:
#   "adverbial": a whole adverbial, put at the start (followed by a comma) or end of a clause;
#   "gerund":    a verb phrase in -ing form, used as  NAME keeps/keep EXPR;
#   "object":    a noun phrase used as the object of a transitive verb.
_EXPRESSIONS: tuple[tuple[str, str], ...] = (
    ("pulling rabbits out of hats", "gerund"),
    ("spilling the beans", "gerund"),
    ("biting the bullet", "gerund"),
    ("breaking the ice", "gerund"),
    ("burning the midnight oil", "gerund"),
    ("cutting corners", "gerund"),
    ("barking up the wrong tree", "gerund"),
    ("beating around the bush", "gerund"),
    ("once in a blue moon", "adverbial"),
    ("in the long run", "adverbial"),
    ("by and large", "adverbial"),
    ("in the nick of time", "adverbial"),
    ("under the weather", "adverbial"),
    ("out of the blue", "adverbial"),
    ("against all odds", "adverbial"),
    ("strong coffee", "object"),
    ("heavy rain", "object"),
    ("a piece of cake", "object"),
    ("the tip of the iceberg", "object"),
    ("common sense", "object"),
    ("fast food", "object"),
    ("a blessing in disguise", "object"),
    ("the elephant in the room", "object"),
    ("a storm in a teacup", "object"),
)

SYLLABLES: tuple[str, ...] = (
    "ka",
    "lo",
    "mir",
    "dan",
    "vel",
    "tor",
    "ris",
    "en",
    "bal",
    "zu",
    "fen",
    "gar",
    "ul",
    "tha",
    "pri",
    "os",
    "nim",
    "ber",
    "cas",
    "dro",
    "el",
    "fi",
    "gol",
    "hal",
    "ib",
    "jor",
    "kel",
    "lun",
    "mab",
    "nor",
    "ot",
    "pel",
    "quin",
    "rav",
    "sil",
    "tam",
    "urs",
    "vor",
    "wen",
    "yl",
    "zar",
)
RECITAL_INTROS: tuple[str, ...] = (
    "read out the words",
    "wrote down the words",
    "listed the words",
    "called out the words",
)
# Words a recital draws from (never words of a planted expression).
_RECITAL_WORDS: tuple[str, ...] = tuple(
    sorted(
        {n[0] for n in NOUNS if " " not in n[0]}
        | set(ADJECTIVES)
        | set(ADVERBS)
        | {v[1] for v in VERBS_TRANSITIVE + VERBS_INTRANSITIVE}
    )
)

_MOTIF_ADJ_COUNT = 2
_PASSAGE_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class CorpusRecipe:
    """Every setting of the corpus generator (rates are probabilities per sentence unless stated).

    Attributes:
        invented_names: cast each passage with names invented from syllables (``Velkaris``),
            new in every passage, so that after a name's first token the rest can only be
            predicted by copying its earlier mention; ``False`` draws from :data:`NAMES`.
        names_per_passage: named characters cast in each passage (they are the only names in it).
        motifs_per_passage: recurring noun phrases (``adjective adjective noun``) per passage.
        sentences_min, sentences_max: sentences per passage, drawn uniformly (inclusive).
        expression_rate: probability that a (non-echo) sentence carries one planted expression.
        echo_rate: probability that a sentence repeats an earlier one of the passage verbatim.
        relative_clause_rate: probability that a noun-phrase subject gets ``that VERB OBJECT``.
        pp_rate: probability that a clause ends in a prepositional phrase.
        adjective_rate: probability that a noun phrase has an adjective.
        plural_rate: probability that a noun phrase is plural.
        name_rate: probability that a subject or object is one of the passage's names.
        motif_rate: probability that an object noun phrase is one of the passage's motifs.
        compound_rate: probability that a sentence joins two clauses with ``, and``.
        question_rate: probability that a sentence is a ``does/do`` question.
        recital_rate: probability (per passage) of one recital: a character reads out a list of
            ``recital_min_words..recital_max_words`` random words and another character
            repeats the list verbatim in the next sentence (pure copying: induction's signal).
    """

    invented_names: bool = True
    names_per_passage: int = 3
    motifs_per_passage: int = 2
    sentences_min: int = 6
    sentences_max: int = 12
    expression_rate: float = 0.25
    echo_rate: float = 0.4
    relative_clause_rate: float = 0.2
    pp_rate: float = 0.35
    adjective_rate: float = 0.4
    plural_rate: float = 0.35
    name_rate: float = 0.45
    motif_rate: float = 0.3
    compound_rate: float = 0.15
    question_rate: float = 0.08
    recital_rate: float = 1.0
    recital_min_words: int = 16
    recital_max_words: int = 40

    def __post_init__(self) -> None:
        rates = {k: v for k, v in asdict(self).items() if k.endswith("_rate")}
        for key, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"CorpusRecipe.{key} must be in [0, 1], got {value}")
        if not 1 <= self.names_per_passage <= len(NAMES):
            raise ValueError(f"names_per_passage must be in [1, {len(NAMES)}], got {self.names_per_passage}")
        if not 1 <= self.motifs_per_passage <= 10:
            raise ValueError(f"motifs_per_passage must be in [1, 10], got {self.motifs_per_passage}")
        if not 1 <= self.recital_min_words <= self.recital_max_words <= len(_RECITAL_WORDS):
            raise ValueError(
                "need 1 <= recital_min_words <= recital_max_words <= "
                f"{len(_RECITAL_WORDS)}, got {self.recital_min_words}, {self.recital_max_words}"
            )
        if not 1 <= self.sentences_min <= self.sentences_max:
            raise ValueError(
                f"need 1 <= sentences_min <= sentences_max, got {self.sentences_min}, {self.sentences_max}"
            )


def planted_expressions() -> list[str]:
    """The ground-truth list of planted multi-word expressions (24 of them, 2–5 words each)."""
    return [text for text, _ in _EXPRESSIONS]


def vocabulary() -> list[str]:
    """Every distinct word the grammar can write (names, nouns, verbs, …, planted-expression words).

    Returns:
        Sorted list of lower-/title-case word strings (punctuation excluded).
    """
    words: set[str] = set(NAMES) | set(ADJECTIVES) | set(ADVERBS)
    for phrase in (*SPEECH_VERBS, *RECITAL_INTROS, "repeated the words"):
        words.update(phrase.split())
    for pair in (*NOUNS, *VERBS_TRANSITIVE, *VERBS_INTRANSITIVE):
        for form in pair:
            words.update(form.split())
    for prep in PREPOSITIONS:
        words.update(prep.split())
    for text, _ in _EXPRESSIONS:
        words.update(text.split())
    words.update(
        [
            "the",
            "a",
            "an",
            "An",
            "this",
            "that",
            "every",
            "some",
            "these",
            "those",
            "and",
            "does",
            "do",
            "keeps",
            "keep",
            "A",
            "The",
            "This",
            "That",
            "Every",
            "Some",
            "These",
            "Those",
            "Does",
            "Do",
        ]
    )
    return sorted(words)


def count_expression(text: str, expression: str) -> int:
    """Number of whole-word, case-insensitive occurrences of ``expression`` in ``text``."""
    if not expression.strip():
        raise ValueError("expression must be a non-empty string")
    pattern = r"(?<![A-Za-z])" + re.escape(expression) + r"(?![A-Za-z])"
    return len(re.findall(pattern, text, flags=re.IGNORECASE))


def _invented_names(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct invented names of 2–3 syllables (``Korvalis``), new in every passage."""
    names: list[str] = []
    while len(names) < n:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if name not in names:
            names.append(name)
    return names


class _PassageWriter:
    """Writes one passage; holds its cast, its motifs and its random stream."""

    def __init__(self, rng: random.Random, recipe: CorpusRecipe) -> None:
        self.rng = rng
        self.recipe = recipe
        if recipe.invented_names:
            self.names = _invented_names(rng, recipe.names_per_passage)
        else:
            self.names = rng.sample(NAMES, recipe.names_per_passage)
        self.motifs = [self._motif() for _ in range(recipe.motifs_per_passage)]

    def _motif(self) -> str:
        adjs = self.rng.sample(ADJECTIVES, _MOTIF_ADJ_COUNT)
        noun = self.rng.choice(NOUNS)[0]
        return f"the {adjs[0]} {adjs[1]} {noun}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def noun_phrase(self, allow_relative: bool) -> tuple[str, bool]:
        """A noun phrase and whether it is plural."""
        r = self.recipe
        plural = self.chance(r.plural_rate)
        singular_form, plural_form = self.rng.choice(NOUNS)
        noun = plural_form if plural else singular_form
        det = self.rng.choice(("the", "these", "those", "some") if plural else ("the", "a", "this", "that", "every"))
        if det == "a" and self.chance(r.adjective_rate):
            adj = self.rng.choice(ADJECTIVES)
            det = "an" if adj[0] in "aeiou" else "a"
            words = [det, adj, noun]
        elif self.chance(r.adjective_rate):
            words = [det, self.rng.choice(ADJECTIVES), noun]
        else:
            if det == "a" and noun[0] in "aeiou":
                det = "an"
            words = [det, noun]
        phrase = " ".join(words)
        if allow_relative and self.chance(r.relative_clause_rate):
            verb = self.rng.choice(VERBS_TRANSITIVE)[1 if plural else 0]
            obj = self.object_phrase()
            phrase = f"{phrase} that {verb} {obj}"
        return phrase, plural

    def subject(self) -> tuple[str, bool]:
        if self.chance(self.recipe.name_rate):
            return self.rng.choice(self.names), False
        return self.noun_phrase(allow_relative=True)

    def object_phrase(self) -> str:
        r = self.recipe
        if self.chance(r.name_rate):
            return self.rng.choice(self.names)
        if self.chance(r.motif_rate):
            return self.rng.choice(self.motifs)
        return self.noun_phrase(allow_relative=False)[0]

    def predicate(self, plural: bool, expression: tuple[str, str] | None) -> str:
        if expression is not None and expression[1] == "gerund":
            return f"{'keep' if plural else 'keeps'} {expression[0]}"
        if expression is not None and expression[1] == "object":
            verb = self.rng.choice(VERBS_TRANSITIVE)[1 if plural else 0]
            return f"{verb} {expression[0]}"
        if self.chance(0.6):
            verb = self.rng.choice(VERBS_TRANSITIVE)[1 if plural else 0]
            text = f"{verb} {self.object_phrase()}"
        else:
            verb = self.rng.choice(VERBS_INTRANSITIVE)[1 if plural else 0]
            text = verb
            if self.chance(0.3):
                text = f"{text} {self.rng.choice(ADVERBS)}"
        if self.chance(self.recipe.pp_rate):
            text = f"{text} {self.rng.choice(PREPOSITIONS)} {self.object_phrase()}"
        return text

    def clause(self, expression: tuple[str, str] | None) -> str:
        subject, plural = self.subject()
        return f"{subject} {self.predicate(plural, expression)}"

    def sentence(self) -> str:
        r = self.recipe
        expression = self.rng.choice(_EXPRESSIONS) if self.chance(r.expression_rate) else None
        if self.chance(r.question_rate) and (expression is None or expression[1] != "adverbial"):
            subject, plural = self.subject()
            predicate = self.predicate(True, expression)  # base form after do-support
            aux = "Do" if plural else "Does"
            return f"{aux} {subject} {predicate}?"
        text = self.clause(expression)
        if expression is not None and expression[1] == "adverbial":
            if self.chance(0.5):
                text = f"{expression[0]}, {text}"
            else:
                text = f"{text} {expression[0]}"
        if self.chance(r.compound_rate):
            text = f"{text}, and {self.clause(None)}"
        ending = "!" if self.chance(0.05) else "."
        return _capitalize(text) + ending

    def recital(self) -> list[str]:
        """A character recites a list of random words and another repeats it verbatim."""
        r = self.recipe
        k = self.rng.randint(r.recital_min_words, r.recital_max_words)
        words = self.rng.sample(_RECITAL_WORDS, k)
        first, second = self.rng.sample(self.names, 2) if len(self.names) > 1 else self.names * 2
        listed = " ".join(words)
        intro = self.rng.choice(RECITAL_INTROS)
        return [f"{first} {intro}: {listed}.", f"{second} repeated the words: {listed}."]

    def passage(self) -> str:
        r = self.recipe
        n = self.rng.randint(r.sentences_min, r.sentences_max)
        sentences: list[str] = []
        originals: list[str] = []  # echoes only ever quote original sentences
        recital_at = self.rng.randrange(n) if self.chance(r.recital_rate) else -1
        for i in range(n):
            if i == recital_at:
                sentences.extend(self.recital())
            if originals and self.chance(r.echo_rate):
                source = self.rng.choice(originals)
                speaker = self.rng.choice(self.names)
                sentences.append(f'{speaker} {self.rng.choice(SPEECH_VERBS)}: "{source}"')
            else:
                sentence = self.sentence()
                originals.append(sentence)
                sentences.append(sentence)
        return " ".join(sentences)


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _passage_rng(seed: int, index: int) -> random.Random:
    return random.Random(seed * _PASSAGE_SEED_STRIDE + index)


def generate_passage(index: int, seed: int = 0, recipe: CorpusRecipe | None = None) -> str:
    """Passage number ``index`` of the corpus with ``seed`` (independent of every other passage)."""
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    recipe = CorpusRecipe() if recipe is None else recipe
    return _PassageWriter(_passage_rng(seed, index), recipe).passage()


def generate_passages(n: int, seed: int = 0, recipe: CorpusRecipe | None = None) -> list[str]:
    """The first ``n`` passages of the corpus with ``seed`` under ``recipe`` (default recipe).

    Args:
        n: number of passages, ``n >= 0``.
        seed: integer seed; the same ``(n, seed, recipe)`` gives the same strings on every machine.
        recipe: the generator's settings; ``None`` means ``CorpusRecipe()``.

    Returns:
        A list of ``n`` passages (strings of 6–12 sentences under the default recipe).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return [generate_passage(i, seed, recipe) for i in range(n)]
