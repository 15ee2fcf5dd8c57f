"""Random English sentences from templates and word lists shipped in `tfspk/synth/data/`.

A template such as `{name} {verb_past} the {adj} {noun}.` is filled with words drawn by a
`numpy.random.Generator`, so a seed fixes the sentences. Every sentence starts with a
letter, never with `--` (which the espeak-ng command line would read as an option).
"""
import functools
import pathlib
import re

from tfspk.synth.espeak import _WORD

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"

# The TIMIT "SA" dialect sentences every TIMIT speaker reads.
SHARED_SENTENCES = (
    "She had your dark suit in greasy wash water all year.",
    "Don't ask me to carry an oily rag like that.",
)

_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "twenty")
_SLOT = re.compile(r"\{([a-z_]+)\}")
_ARTICLE_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


class SentenceDataError(ValueError):
    """A word list or template file is malformed (the message names file and line)."""


def _read_lines(name):
    """Non-empty, non-comment lines of data file `name` as (line_number, text)."""
    path = DATA_DIR / name
    with open(path, encoding="utf-8") as handle:
        return [(number, line.strip()) for number, line in enumerate(handle, start=1)
                if line.strip() and not line.lstrip().startswith("#")]


def _read_columns(name, num_columns):
    rows = []
    for number, line in _read_lines(name):
        columns = line.split()
        if len(columns) != num_columns:
            raise SentenceDataError(f"{DATA_DIR / name}:{number}: expected {num_columns} "
                                    f"words, found {len(columns)}: {line!r}")
        rows.append(tuple(columns))
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def vocabulary():
    """The slot name -> tuple of words table used by the templates."""
    nouns = _read_columns("nouns.txt", 2)
    verbs = _read_columns("verbs.txt", 3)
    return {
        "name": tuple(row[0] for row in _read_columns("names.txt", 1)),
        "noun": tuple(row[0] for row in nouns),
        "nouns": tuple(row[1] for row in nouns),
        "adj": tuple(row[0] for row in _read_columns("adjectives.txt", 1)),
        "adv": tuple(row[0] for row in _read_columns("adverbs.txt", 1)),
        "verb": tuple(row[0] for row in verbs),
        "verb_past": tuple(row[1] for row in verbs),
        "verb_s": tuple(row[2] for row in verbs),
        "prep": tuple(row[0] for row in _read_columns("prepositions.txt", 1)),
        "number": _NUMBERS,
    }


@functools.lru_cache(maxsize=None)
def templates():
    """The sentence templates, checked for unknown slots."""
    words = vocabulary()
    result = []
    for number, line in _read_lines("templates.txt"):
        unknown = sorted(set(_SLOT.findall(line)) - set(words))
        if unknown:
            raise SentenceDataError(f"{DATA_DIR / 'templates.txt'}:{number}: unknown slot(s) "
                                    f"{unknown}; known: {sorted(words)}")
        result.append(line)
    return tuple(result)


def random_sentence(rng):
    """One sentence drawn with `rng` (a `numpy.random.Generator`)."""
    words = vocabulary()
    template = templates()[rng.integers(len(templates()))]
    text = _SLOT.sub(lambda match: words[match.group(1)][rng.integers(len(words[match.group(1)]))],
                     template)
    text = _ARTICLE_BEFORE_VOWEL.sub(lambda match: match.group(1) + "n ", text)
    return text[0].upper() + text[1:]


def random_sentences(rng, count):
    """`count` sentences drawn with `rng`; consecutive duplicates are redrawn."""
    sentences = []
    while len(sentences) < count:
        sentence = random_sentence(rng)
        if not sentences or sentence != sentences[-1]:
            sentences.append(sentence)
    return sentences


def words_of(text):
    """The lower-case words of `text` as (start, end) character spans and the word itself."""
    return [(match.start(), match.end(), match.group(0).lower())
            for match in _WORD.finditer(text)]
