"""Build the held-out evaluation sets in samples/eval/ (deterministic: same seed, same files).

    python scripts/make_heldout_sets.py [--towns 25] [--seed 2026] [--out samples/eval]

The training corpus (samples/corpus/) is about Harrowmere, Osmir, Corvane and Tessellate; these
sets are about towns that appear nowhere in it, written from a fixed seed: each town gets a
document of facts (founding, river, trade, census, festival, school, a fire and its rebuilding, a
bridge), and each item's context is its town's document among two other towns' documents,
shuffled, so the reader must find the right town among distractors that state the same kinds of
facts. Multiple-choice items (LongBench-v2 JSON) take their wrong options from those other towns'
values of the same fact; short-answer items (LongBench QA JSONL) accept the value with and without
its article. No item's answer is in its question. The two sets ask about different facts.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ONSETS = ["br", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "th", "gr", "pl"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
CODAS = ["n", "r", "l", "m", "th", "ck", "sk", "nd", "rn", "x", ""]
TOWN_ENDS = ["ford", "bury", "wick", "stead", "mouth", "holm", "by", "thorpe", "ham", "dale"]
FIRST_NAMES = ["Agnes", "Bertram", "Clara", "Dorian", "Edith", "Felix", "Greta", "Hugo", "Isolde", "Jonas",
               "Katrin", "Leopold", "Marta", "Nils", "Odile", "Pavel", "Rosa", "Silas", "Thea", "Viktor"]
PROFESSIONS = ["salt trader", "shipwright", "miller", "glassmaker", "surveyor", "weaver", "brewer", "physician"]
TRADES = ["smoked herring", "copper wire", "wool blankets", "roof slate", "pear brandy", "rope", "clay pipes",
          "barley malt", "tin buttons", "cured hams", "linen thread", "lamp oil"]
BUILDINGS = ["granary", "town hall", "chapel", "corn exchange", "customs house", "library"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
FESTIVALS = ["Lantern", "Harvest", "Herring", "Kite", "Apple", "Ice", "Bell", "Boat"]
DIRECTIONS = ["north", "south", "east", "west"]

DISTRACTORS = 2  # other towns' documents in each context (a 135M model on a CPU: about 500 tokens)
# MC asks about these facts, QA about the others: the sets do not share a question.
MC_FACTS = ("founder", "trade", "festival_month", "bridge_builder")
QA_FACTS = ("river", "rebuilder", "school_founder", "census")


def word(rng: random.Random) -> str:
    return "".join(rng.choice(part) for part in (ONSETS, VOWELS, CODAS)).capitalize()


def person(rng: random.Random, used: set[str]) -> str:
    while True:
        name = f"{rng.choice(FIRST_NAMES)} {word(rng)}{rng.choice(['', 's', 'er', 'ton'])}"
        if name not in used:
            used.add(name)
            return name


def make_town(rng: random.Random, name: str, used: set[str]) -> dict:
    founded = rng.randrange(1620, 1850)
    fire = founded + rng.randrange(20, 90)
    town = {
        "name": name, "founded": founded, "founder": person(rng, used), "profession": rng.choice(PROFESSIONS),
        "origin": word(rng) + rng.choice(TOWN_ENDS), "river": word(rng), "km": rng.randrange(4, 60),
        "direction": rng.choice(DIRECTIONS), "city": word(rng) + rng.choice(TOWN_ENDS), "trade": rng.choice(TRADES),
        "port": "Port " + word(rng), "census": f"{rng.randrange(12, 480) * 100:,}", "census_year": rng.randrange(1870, 1930),
        "festival": rng.choice(FESTIVALS), "festival_month": rng.choice(MONTHS), "school_year": founded + rng.randrange(30, 120),
        "school_founder": person(rng, used), "pupils": rng.randrange(9, 70), "fire": fire,
        "burned": rng.choice(BUILDINGS), "rebuilder": person(rng, used), "bridge_year": fire + rng.randrange(5, 40),
        "bridge_builder": person(rng, used), "arches": rng.randrange(2, 9),
    }
    return town


def document(t: dict) -> str:
    return " ".join([
        f"{t['name']} was founded in {t['founded']} by {t['founder']}, a {t['profession']} from {t['origin']}.",
        f"The town stands on the {t['river']} River, {t['km']} kilometres {t['direction']} of {t['city']}.",
        f"Its main trade is {t['trade']}, which is shipped through {t['port']}.",
        f"A fire in {t['fire']} destroyed the {t['burned']}, which was rebuilt by {t['rebuilder']} two years later.",
        f"The stone bridge of {t['arches']} arches was built in {t['bridge_year']} by {t['bridge_builder']}.",
        f"The first school opened in {t['school_year']} with {t['pupils']} pupils; its founder was {t['school_founder']}.",
        f"At the census of {t['census_year']} the town had {t['census']} inhabitants.",
        f"Every {t['festival_month']} the town holds its {t['festival']} Festival on the river bank.",
    ])


def question(fact: str, t: dict) -> str:
    return {
        "founder": f"Who founded {t['name']}?",
        "trade": f"What is the main trade of {t['name']}?",
        "festival_month": f"In which month does {t['name']} hold its {t['festival']} Festival?",
        "bridge_builder": f"Who built the stone bridge of {t['name']} in {t['bridge_year']}?",
        "river": f"On which river does {t['name']} stand?",
        "rebuilder": f"Who rebuilt the {t['burned']} of {t['name']} after the fire of {t['fire']}?",
        "school_founder": f"Who founded the first school of {t['name']}?",
        "census": f"How many inhabitants did {t['name']} have at the census of {t['census_year']}?",
    }[fact]


def answers(fact: str, t: dict) -> list[str]:
    if fact == "river":
        return [f"the {t['river']} River", f"{t['river']} River", t["river"]]
    return [str(t[fact])]


def build(n_towns: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < n_towns:
        names.add(word(rng) + rng.choice(TOWN_ENDS))
    used: set[str] = set()
    towns = [make_town(rng, name, used) for name in sorted(names)]
    docs = {t["name"]: f"{t['name']}\n\n{document(t)}" for t in towns}
    mc, qa = [], []
    for i, t in enumerate(towns):
        others = rng.sample([o for o in towns if o is not t], DISTRACTORS)
        for fact in MC_FACTS:
            # wrong options: other towns' values of the same fact, distinct from the right one
            pool = sorted({o[fact] for o in towns if o is not t and o[fact] != t[fact]})
            wrong = rng.sample(pool, 3)
            options = wrong + [t[fact]]
            rng.shuffle(options)
            context = [docs[x["name"]] for x in [t, *others]]
            rng.shuffle(context)
            mc.append({
                "_id": f"heldout-mc-{i:02d}-{fact}", "domain": "Multi-Document QA", "sub_domain": "heldout-towns",
                "difficulty": "easy", "length": "short", "question": question(fact, t),
                **{f"choice_{k}": str(v) for k, v in zip("ABCD", options)},
                "answer": "ABCD"[options.index(t[fact])], "context": "\n\n".join(context),
            })
        for fact in QA_FACTS:
            context = [docs[x["name"]] for x in [t, *others]]
            rng.shuffle(context)
            qa.append({"_id": f"heldout-qa-{i:02d}-{fact}", "input": question(fact, t), "context": "\n\n".join(context),
                       "answers": answers(fact, t), "dataset": "heldout-towns"})
    return mc, qa


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--towns", type=int, default=25)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "samples" / "eval")
    args = p.parse_args()
    mc, qa = build(args.towns, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "heldout_towns_mc.json").write_text(json.dumps(mc, indent=1, ensure_ascii=False) + "\n")
    with open(args.out / "heldout_towns_qa.jsonl", "w") as f:
        for item in qa:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(mc)} multiple-choice items, {len(qa)} short-answer items in {args.out}")


if __name__ == "__main__":
    main()
