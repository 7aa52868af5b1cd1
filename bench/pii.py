"""PII policy engine: throughput on structured fields, and our recognizers against
Presidio's default analyzer on the same labelled free text (issue 11).

Run with `python -m bench.pii` (about a minute; `--sentences` sets the free-text sample).
Everything is synthetic and labelled by construction (`--seed`): names, emails, phones in
international and national formats, IBANs of ten countries, card numbers of six issuers, US
SSNs and Dutch BSNs, all with correct check digits (tests/privacy/ids.py). They appear in two
forms:

- structured records, one field per identifier plus ordinary fields, under a policy that
  uses every action but scan; throughput is records per process-CPU-second (one core), and
  the same with a free-text `notes` field scanned (structured recognizers, then with NER)
  is printed for information;
- free-text sentences from templates, each entity's span known, mixed with sentences
  holding look-alikes that are not PII (dates, order numbers, amounts, identifiers with a
  one-digit typo).

Three analyzers read the same sentences in the same run: ours with the structured
recognizers alone, ours with NER (structured + `PresidioAnalyzer` for PERSON and LOCATION,
overlapping spans resolved by score, then length), and Presidio's default AnalyzerEngine
(its predefined recognizers, its default NLP configuration with the same spaCy package,
score threshold 0; its raw results, Presidio's entity names translated to ours). A
prediction counts only with the exact span and type; per entity: precision, recall and F2
(recall weighted 4x: a missed identifier leaks, a false one only over-redacts). Types that
are not labelled (Presidio's DATE_TIME, URL, ..., a LOCATION) count as false positives in
the overall figures and are listed. Throughput is sentences per process-CPU-second of the
analyzer alone.

Targets: >= 5,000 records/s/core on structured fields; ours (structured) >= 10x Presidio's
default on free text; recall >= 0.95 on the checksum-validated identifiers (IBAN,
CREDIT_CARD, NL_BSN pooled).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agogosml.privacy.engine import Analyzer, PolicyEngine
from agogosml.privacy.entities import PRESIDIO_TO_OURS
from agogosml.privacy.keys import Keyring
from agogosml.privacy.policy import Policy
from agogosml.privacy.presidio import DEFAULT_MODEL, PresidioAnalyzer, offline_tldextract
from agogosml.privacy.recognizers import Span, StructuredAnalyzer, resolve
from tests.privacy import ids

THROUGHPUT_TARGET = 5_000.0
CHECKSUM_RECALL_TARGET = 0.95
RATIO_TARGET = 10.0
CHECKSUMMED = ("IBAN", "CREDIT_CARD", "NL_BSN")
WARM_UP = 20

FIRST = [
    "Ann",
    "Bob",
    "Carlos",
    "Daan",
    "Emma",
    "Fatima",
    "Gert",
    "Hannah",
    "Ivan",
    "Julia",
    "Kees",
    "Lotte",
    "Mohammed",
    "Noor",
    "Olga",
    "Pieter",
    "Sanne",
    "Thomas",
    "Yara",
    "Zoe",
]
LAST = [
    "de Vries",
    "Jansen",
    "Smith",
    "Garcia",
    "Bakker",
    "O'Brien",
    "Nguyen",
    "Muller",
    "van den Berg",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Johnson",
    "Visser",
    "Meijer",
]
DOMAINS = ["example.com", "mail.nl", "corp.co.uk", "post.de", "uni-utrecht.nl", "gmail.com"]
MERCHANTS = ["grocery", "travel", "electronics", "fuel", "restaurant"]  # fmt: skip

STRUCTURED_POLICY = """
fields:
  name: redact
  email: pseudonymize
  phone: {action: mask, keep_last: 2}
  iban: encrypt
  card: {action: mask, keep_last: 4}
  ssn: redact
  customer.bsn: pseudonymize
  debug: drop
  amount: keep
"""


def name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def email(rng: random.Random, person: str) -> str:
    first, *rest = person.lower().replace("'", "").split()
    sep = rng.choice([".", "_", ""])
    return (
        f"{first}{sep}{rest[-1]}{rng.choice(['', str(rng.randint(1, 99))])}@{rng.choice(DOMAINS)}"
    )


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def phone(rng: random.Random) -> str:
    formats = [
        lambda: f"+31 6 {digits(rng, 8)}",
        lambda: f"+31 20 {digits(rng, 3)} {digits(rng, 4)}",
        lambda: f"+1 ({rng.randint(201, 989)}) {digits(rng, 3)}-{digits(rng, 4)}",
        lambda: f"+44 20 {digits(rng, 4)} {digits(rng, 4)}",
        lambda: f"+49{rng.randint(151, 179)}{digits(rng, 8)}",
        lambda: f"06-{digits(rng, 8)}",
        lambda: f"(0{rng.randint(10, 79)}) {digits(rng, 3)} {digits(rng, 4)}",
        lambda: f"{rng.randint(201, 989)}-{digits(rng, 3)}-{digits(rng, 4)}",
        lambda: f"0{rng.randint(10, 79)} {digits(rng, 3)} {digits(rng, 2)} {digits(rng, 2)}",
    ]
    return rng.choice(formats)()


def iban(rng: random.Random) -> str:
    return ids.iban(rng, rng.choice(sorted(ids.BBAN_LAYOUTS)), spaced=rng.random() < 0.7)


def card(rng: random.Random) -> str:
    return ids.card(rng, rng.choice(sorted(ids.CARD_PREFIXES)), rng.choice([" ", "-", ""]))


def bsn(rng: random.Random) -> str:
    value = ids.bsn(rng)
    return f"{value[:4]}.{value[4:6]}.{value[6:]}" if rng.random() < 0.3 else value


def structured_record(rng: random.Random) -> dict[str, Any]:
    person = name(rng)
    return {
        "id": rng.randint(1, 10**9),
        "name": person,
        "email": email(rng, person),
        "phone": phone(rng),
        "iban": iban(rng),
        "card": card(rng),
        "ssn": ids.ssn(rng),
        "customer": {"bsn": ids.bsn(rng), "segment": rng.choice("ABC")},
        "amount": round(rng.lognormvariate(3.5, 1.1), 2),
        "merchant_category": rng.choice(MERCHANTS),
        "debug": {"trace": digits(rng, 12)},
    }


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "PHONE": phone, "IBAN": iban, "CREDIT_CARD": card, "US_SSN": ids.ssn, "NL_BSN": bsn,
}  # fmt: skip
TEMPLATES = [
    "Hi, this is {PERSON}, you can reach me at {EMAIL} or {PHONE}.",
    "Please refund the payment to {IBAN} (account holder {PERSON}).",
    "Customer {PERSON} disputes a charge on card {CREDIT_CARD} made on 2024-03-{day}.",
    "SSN {US_SSN} was entered twice for order {order}.",
    "Mijn BSN is {NL_BSN} en mijn telefoonnummer {PHONE}.",
    "Call me back on {PHONE} about ticket #{order}, thanks!",
    "New IBAN: {IBAN}. Old card {CREDIT_CARD} is blocked.",
    "{PERSON} <{EMAIL}> asked to close the account; SSN on file {US_SSN}.",
    "Transfer EUR {amount} from {IBAN} before {day}/06/2025; questions to {EMAIL}.",
    "verified id {NL_BSN}, card ending in {last4}, contact {PHONE}",
]
DISTRACTORS = [
    "Order {order} shipped on 2024-05-{day} for EUR {amount}.",
    "Version 2.{day}.{last4} fixes ticket #{order}.",
    "The invoice total is 1.234.{last4},00 and the reference is {order}.",
    "Typo'd card {bad_card} was rejected; IBAN {bad_iban} failed validation.",
    "Batch {order}{last4} processed {amount} events in {day} seconds.",
    "Meeting at 10:{day} in room {last4}; dial-in code {order}.",
]


@dataclass(frozen=True)
class Sentence:
    text: str
    gold: tuple[Span, ...]


def sentence(rng: random.Random, template: str) -> Sentence:
    person = name(rng)
    fillers: dict[str, str] = {
        "order": digits(rng, rng.randint(5, 8)),
        "day": f"{rng.randint(10, 28)}",
        "amount": f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
        "last4": digits(rng, 4),
        "bad_card": ids.typo(rng, ids.card(rng)),
        "bad_iban": ids.typo(rng, ids.iban(rng, "NL")),
        "PERSON": person,
        "EMAIL": email(rng, person),
    }
    gold: list[Span] = []
    text, cursor = "", 0
    while True:
        open_at = template.find("{", cursor)
        if open_at < 0:
            return Sentence(text + template[cursor:], tuple(gold))
        close_at = template.index("}", open_at)
        slot = template[open_at + 1 : close_at]
        value = fillers[slot] if slot in fillers else GENERATORS[slot](rng)
        text += template[cursor:open_at]
        if slot.isupper():
            gold.append(Span(len(text), len(text) + len(value), slot, 1.0))
        text += value
        cursor = close_at + 1


def sentences(rng: random.Random, count: int) -> list[Sentence]:
    return [
        sentence(rng, rng.choice(DISTRACTORS if rng.random() < 0.25 else TEMPLATES))
        for _ in range(count)
    ]


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f2(self) -> float:
        p, r = self.precision, self.recall
        return 5 * p * r / (4 * p + r) if p + r else 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


class Combined:
    """Several analyzers' spans, overlaps resolved by score (a scan also replaces the parts
    of a beaten span that stick out; here each span keeps its type, for scoring)."""

    def __init__(self, *analyzers: Analyzer) -> None:
        self._analyzers = analyzers

    def analyze(self, text: str) -> list[Span]:
        return resolve(span for analyzer in self._analyzers for span in analyzer.analyze(text))


class PresidioDefault:
    """Presidio's AnalyzerEngine as it comes: predefined recognizers, the default NLP
    configuration (default.yaml) with `model` for its spaCy pipeline, score threshold 0."""

    def __init__(self, model: str) -> None:
        from pathlib import Path

        import presidio_analyzer
        import yaml
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        offline_tldextract()  # else its email recognizer fetches the Public Suffix List
        conf_file = Path(presidio_analyzer.__file__).parent / "conf" / "default.yaml"
        conf = yaml.safe_load(conf_file.read_text(encoding="utf-8"))
        conf["models"] = [{"lang_code": "en", "model_name": model}]
        presidio_log = logging.getLogger("presidio-analyzer")
        presidio_log.setLevel(logging.ERROR)  # one warning per non-English recognizer
        self._engine = AnalyzerEngine(
            nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine()
        )
        presidio_log.setLevel(logging.WARNING)

    def analyze(self, text: str) -> list[Span]:
        return [
            Span(r.start, r.end, PRESIDIO_TO_OURS.get(r.entity_type, r.entity_type), r.score)
            for r in self._engine.analyze(text=text, language="en")
        ]


@dataclass(frozen=True)
class MinScore:
    """An analyzer's spans at or above a score, as a scan rule's min_score keeps them."""

    analyzer: Analyzer
    min_score: float

    def analyze(self, text: str) -> Sequence[Span]:
        return [s for s in self.analyzer.analyze(text) if s.score >= self.min_score]


@dataclass
class Outcome:
    """One analyzer on the corpus: tallies per entity and process-CPU seconds."""

    name: str
    tallies: dict[str, Tally]
    seconds: float

    def rate(self, count: int) -> float:
        return count / self.seconds

    def pooled(self, entities: Sequence[str]) -> Tally:
        return sum((self.tallies.get(e, Tally()) for e in entities), Tally())


def run(name: str, analyzer: Analyzer, corpus: Sequence[Sentence]) -> Outcome:
    for item in corpus[:WARM_UP]:
        analyzer.analyze(item.text)
    start = time.process_time()
    predictions = [analyzer.analyze(item.text) for item in corpus]
    seconds = time.process_time() - start
    tallies: dict[str, Tally] = {}
    for item, found_spans in zip(corpus, predictions, strict=True):
        gold = {(s.start, s.end, s.entity) for s in item.gold}
        found = {(s.start, s.end, s.entity) for s in found_spans}
        for *_, entity in gold | found:
            tallies.setdefault(entity, Tally())
        for *_, entity in gold & found:
            tallies[entity].tp += 1
        for *_, entity in found - gold:
            tallies[entity].fp += 1
        for *_, entity in gold - found:
            tallies[entity].fn += 1
    return Outcome(name, tallies, seconds)


def throughput(engine: PolicyEngine, records: Sequence[dict[str, Any]], repeats: int) -> float:
    """Records per process-CPU-second, the best of `repeats` passes."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for record in records:
            engine.apply(record)
        best = min(best, time.process_time() - start)
    return len(records) / best


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def figures(tally: Tally) -> str:
    return f"{tally.precision:>6.3f} {tally.recall:>6.3f} {tally.f2:>6.3f}"


def report_quality(outcomes: Sequence[Outcome], corpus: Sequence[Sentence]) -> None:
    gold_counts = Counter(s.entity for item in corpus for s in item.gold)
    labelled = sorted(gold_counts)
    print(f"  {'':<19}" + "".join(f"{o.name:^22}" for o in outcomes))
    print(f"  {'entity':<12} {'gold':>6}" + f"{'P':>7} {'R':>6} {'F2':>6} " * len(outcomes))
    for entity in labelled:
        row = "".join(
            f" {figures(o.tallies.get(entity, Tally(fn=gold_counts[entity])))} " for o in outcomes
        )
        print(f"  {entity:<12} {gold_counts[entity]:>6}{row}")
    overall = "".join(f" {figures(o.pooled(sorted(o.tallies)))} " for o in outcomes)
    print(f"  {'overall':<12} {sum(gold_counts.values()):>6}{overall}")
    for o in outcomes:
        extra = {e: t.fp for e, t in sorted(o.tallies.items()) if e not in gold_counts and t.fp}
        if extra:
            listed = ", ".join(f"{e} {n}" for e, n in extra.items())
            print(f"  {o.name}: types not labelled (false positives above): {listed}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument(
        "--sentences", type=int, default=1_000, help="free-text sample all three analyzers read"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="installed spaCy pipeline")
    parser.add_argument(
        "--min-score", type=float, default=0.0, help="scan's min_score: 0.5 drops bare numbers"
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    keyring = Keyring(pseudonym_key=os.urandom(32), encryption_keys={"bench": os.urandom(32)})
    structured_analyzer = StructuredAnalyzer()
    with_ner = Combined(structured_analyzer, PresidioAnalyzer(model=args.model))

    records = [structured_record(rng) for _ in range(args.records)]
    structured = PolicyEngine(Policy.from_yaml(STRUCTURED_POLICY), keyring, [structured_analyzer])
    rate = throughput(structured, records, args.repeats)
    texts = sentences(rng, args.records)
    with_notes = [{**r, "notes": s.text} for r, s in zip(records, texts, strict=True)]
    scan_policy = Policy.from_yaml(STRUCTURED_POLICY + "  notes: scan\n")
    scan_rate = throughput(
        PolicyEngine(scan_policy, keyring, [structured_analyzer]), with_notes, args.repeats
    )
    ner_sample = with_notes[: args.sentences]
    ner_rate = throughput(PolicyEngine(scan_policy, keyring, [with_ner]), ner_sample, 1)
    print(f"throughput ({args.records} records, best of {args.repeats}, process CPU time)")
    print(
        f"  structured fields: {rate:,.0f} records/s/core  "
        f"(target >= {THROUGHPUT_TARGET:,.0f}: {verdict(rate >= THROUGHPUT_TARGET)})"
    )
    print(
        f"  + free-text notes scanned, structured: {scan_rate:,.0f} records/s/core  (information)"
    )
    print(
        f"  + free-text notes scanned, structured + NER: {ner_rate:,.0f} records/s/core"
        f"  (information, {len(ner_sample)} records, one pass)"
    )

    corpus = sentences(rng, args.sentences)
    analyzers: list[tuple[str, Analyzer]] = [
        ("ours structured", structured_analyzer),
        ("ours + NER", with_ner),
        ("Presidio default", PresidioDefault(args.model)),
    ]
    outcomes = [run(name, MinScore(a, args.min_score), corpus) for name, a in analyzers]
    print(
        f"\nfree text: {len(corpus)} labelled sentences, exact span and type "
        f"(min score {args.min_score}; P precision, R recall)"
    )
    report_quality(outcomes, corpus)

    print("\nrecords/s/core on these sentences (process CPU time of the analyzer)")
    for o in outcomes:
        print(f"  {o.name:<17} {o.rate(len(corpus)):>9,.0f}")
    presidio = outcomes[-1].rate(len(corpus))
    ratio = outcomes[0].rate(len(corpus)) / presidio
    print(
        f"  ours structured / Presidio default: {ratio:,.1f}x  "
        f"(target >= {RATIO_TARGET:.0f}x: {verdict(ratio >= RATIO_TARGET)})"
    )
    print(
        f"  ours + NER / Presidio default: {outcomes[1].rate(len(corpus)) / presidio:,.1f}x"
        "  (information)"
    )

    print(f"\nrecall on checksum-validated ids ({', '.join(CHECKSUMMED)} pooled)")
    for o in outcomes:
        recall = o.pooled(CHECKSUMMED).recall
        met = not math.isnan(recall) and recall >= CHECKSUM_RECALL_TARGET
        target = (
            f"  (target >= {CHECKSUM_RECALL_TARGET}: {verdict(met)})"
            if o is outcomes[0]
            else "  (information)"
        )
        print(f"  {o.name:<17} {recall:.3f}{target}")


if __name__ == "__main__":
    main()
