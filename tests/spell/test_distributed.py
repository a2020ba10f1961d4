"""The pure parts of spell/distributed.py: a group of one is the identity, and the update batch's
shards balance tokens while keeping a shared prompt's sequences together."""

from __future__ import annotations

from spell.distributed import SINGLE, DataParallel, balanced_shards


def test_a_group_of_one_owns_every_slot_and_its_collectives_are_identities():
    assert SINGLE.is_main and not SINGLE.several and all(SINGLE.owns(s) for s in range(5))
    assert SINGLE.gather({"a": 1}) == [{"a": 1}] and SINGLE.broadcast(3) == 3
    assert SINGLE.sum([1, 2.5]) == [1.0, 2.5] and SINGLE.max([4]) == [4.0]


def test_slots_go_round_robin_and_the_environment_names_the_rank(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    group = DataParallel.from_environment()
    assert (group.rank, group.world, group.is_main) == (1, 3, False)
    assert [s for s in range(9) if group.owns(s)] == [1, 4, 7]


def test_shards_keep_groups_together_and_balance_tokens():
    # three responder groups (one prompt each, 4 sequences) and four lone questioner sequences
    keys = ["g1"] * 4 + ["g2"] * 4 + ["g3"] * 4 + ["q1", "q2", "q3", "q4"]
    lengths = [100] * 4 + [60] * 4 + [50] * 4 + [80, 40, 30, 20]
    shards = balanced_shards(lengths, keys, 2)
    assert sorted(i for s in shards for i in s) == list(range(len(keys)))  # each once
    for key in set(keys):
        assert sum(1 for s in shards if any(keys[i] == key for i in s)) == 1  # a group on one rank
    loads = [sum(lengths[i] for i in s) for s in shards]
    assert abs(loads[0] - loads[1]) <= 80 and balanced_shards(lengths, keys, 2) == shards  # deterministic
    assert balanced_shards([5], ["only"], 3) == [[0], [], []]  # fewer items than ranks: some idle
