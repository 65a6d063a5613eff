"""French->English sentence pairs realised by pyrealb from one shared structure.

Each sentence is drawn as an abstract frame (subject, verb, objects, tense, negation,
question...) and realised by pyrealb in French and in English, so both sides are
grammatical and mean the same thing, and the constructions where the languages order
words differently come for free: adjectives after the noun, object pronouns before the
verb, ne...pas around it, subject-verb inversion in questions, compound past tenses.

Splits are decided by content, not by drawing order: a sentence goes to `test` if it
uses an adjective-noun combination held out of training (so the test split measures
generalisation to unseen combinations), else to train/valid/test by a hash of its text,
so the splits never share a sentence.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

import pyrealb as rb

from training.demo import lexicon as lx

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Pair:
    fr: str
    en: str
    combos: frozenset[str]  # "adjective|noun" (French lemmas) used in the sentence


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def held_out(combo: str, fraction: float = 0.1) -> bool:
    """Adjective-noun combinations reserved for the test split."""
    return _stable_hash("combo:" + combo) % 1000 < fraction * 1000


def split_of(pair: Pair, valid: float = 0.02, test: float = 0.02) -> str:
    if any(held_out(c) for c in pair.combos):
        return "test"
    bucket = _stable_hash(pair.fr) % 10_000 / 10_000
    return "valid" if bucket < valid else "test" if bucket < valid + test else "train"


@dataclass
class _NP:
    noun: tuple[str, str]
    adjective: tuple[str, str] | None
    determiner: str | int  # "def", "indef" or a number
    plural: bool

    def realise(self, lang: int):
        noun = rb.N(self.noun[lang])
        if isinstance(self.determiner, int):
            det = rb.NO(self.determiner).dOpt({"nat": True})
        else:
            det = rb.D(("le", "the")[lang] if self.determiner == "def" else ("un", "a")[lang])
        parts = [det, noun] + ([rb.A(self.adjective[lang])] if self.adjective else [])
        np_ = rb.NP(*parts)
        return np_.n("p") if self.plural and not isinstance(self.determiner, int) else np_


class SentenceGenerator:
    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        rb.loadFr()
        rb.loadEn()

    def _np(self, kind: str = "any", adjective_p: float = 0.5, number_p: float = 0.15) -> _NP:
        r = self.rng
        nouns = [n for n in lx.NOUNS if (kind != "person" or n[0] in lx.PEOPLE) and (kind != "animate" or n[0] in lx.ANIMATE)
                 and (kind != "place" or n[0] in lx.PLACES)]
        noun = r.choice(nouns)
        adjectives = [a for a in lx.ADJECTIVES if noun[0] not in lx.PEOPLE or a[0] in lx.PERSON_ADJECTIVES]
        adjective = r.choice(adjectives) if r.random() < adjective_p else None
        if r.random() < number_p:
            return _NP(noun, adjective, r.choice(lx.NUMBERS), True)
        return _NP(noun, adjective, r.choice(["def", "def", "indef"]), r.random() < 0.25)

    def frame(self) -> dict:
        r = self.rng
        kind = r.choices(["transitive", "intransitive", "ditransitive"], weights=[6, 3, 2])[0]
        tense = r.choice(["p", "pc", "f"])
        frame: dict = {"kind": kind, "tense": tense, "neg": r.random() < 0.25, "question": None,
                       "subject": None if r.random() < 0.2 else self._np("person" if kind != "intransitive" else "animate"),
                       "pronoun": (r.choice([1, 2]), r.random() < 0.4), "object_pronoun": False, "adverb": None, "place": None}
        if kind == "transitive":
            frame["verb"] = r.choice(lx.TRANSITIVE)
            frame["object"] = self._np()
            frame["object_pronoun"] = r.random() < 0.25
            if not frame["object_pronoun"] and r.random() < 0.2:
                frame["question"] = "wad"
        elif kind == "ditransitive":
            frame["verb"] = r.choice(lx.DITRANSITIVE)
            frame["object"] = self._np()
            frame["recipient"] = self._np("person", adjective_p=0.3, number_p=0.0)
        else:
            frame["verb"] = r.choice(lx.INTRANSITIVE)
            if r.random() < 0.5:
                frame["place"] = (r.choice(lx.LOCATIVE), self._np("place", adjective_p=0.3, number_p=0.0))
        if frame["question"] is None and r.random() < 0.2:
            frame["question"] = "yon"
        if r.random() < 0.3:
            frame["adverb"] = r.choice(lx.TIME_ADVERBS[tense])
        return frame

    def realise(self, frame: dict, lang: int) -> str:
        """lang 0 = French, 1 = English."""
        (rb.loadFr if lang == 0 else rb.loadEn)()
        person, plural = frame["pronoun"]
        if frame["subject"] is not None:
            subject = frame["subject"].realise(lang)
        else:
            subject = rb.Pro(("je", "I")[lang]).pe(person).n("p" if plural else "s")
        verb = rb.V(frame["verb"][lang])
        parts = []
        if frame["kind"] in ("transitive", "ditransitive"):
            obj = frame["object"].realise(lang)
            parts.append(obj.pro() if frame["object_pronoun"] else obj)
        if frame["kind"] == "ditransitive":
            parts.append(rb.PP(rb.P(("à", "to")[lang]), frame["recipient"].realise(lang)))
        if frame["place"] is not None:
            preposition, place = frame["place"]
            parts.append(rb.PP(rb.P(preposition[lang]), place.realise(lang)))
        if frame["adverb"] is not None:
            parts.append(rb.Adv(frame["adverb"][lang]))
        tense = frame["tense"] if lang == 0 or frame["tense"] != "pc" else "ps"
        sentence = rb.S(subject, rb.VP(verb, *parts)).t(tense)
        types = {"neg": True} if frame["neg"] else {}
        if frame["question"]:
            types["int"] = frame["question"]
        if types:
            sentence = sentence.typ(types)
        return sentence.realize().strip()

    def pair(self) -> Pair | None:
        """One sentence pair, or None when pyrealb flags a word it cannot inflect."""
        frame = self.frame()
        fr, en = self.realise(frame, 0), self.realise(frame, 1)
        if "[[" in fr or "[[" in en:
            return None
        return Pair(_elide_que(fr), en, realised_combos(frame))


def realised_combos(frame: dict) -> frozenset[str]:
    """The adjective-noun combinations a frame's sentence says aloud.

    An object replaced by a pronoun or by the question word is not heard, so it must not
    send the sentence to `test`: the same words would then also be drawn for `train`."""
    nps = [frame["subject"], frame.get("recipient"), frame["place"][1] if frame["place"] else None]
    if not frame["object_pronoun"] and frame["question"] != "wad":
        nps.append(frame.get("object"))
    return frozenset(f"{np_.adjective[0]}|{np_.noun[0]}" for np_ in nps if isinstance(np_, _NP) and np_.adjective)


def _elide_que(french: str) -> str:
    """pyrealb writes "Que est-ce que", "que un": French elides que before a vowel (not before onze, huit)."""
    return re.sub(r"\b([Qq])ue (?=(?!onze\b|huit\b)[aeiouyéèêàâîôû])", r"\1u'", french)
