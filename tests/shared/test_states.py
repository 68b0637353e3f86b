import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.states import (
    ALLOCATION_TRANSITIONS,
    DOOR_STATUS_FOR_ALLOCATION,
    DOOR_TRANSITIONS,
    LIVE_ALLOCATION_STATUSES,
    AllocationStatus,
    DoorStatus,
    IllegalTransition,
    allocation_transition,
    door_transition,
)

allocation_statuses = st.sampled_from(list(AllocationStatus))
door_statuses = st.sampled_from(list(DoorStatus))


@given(door_statuses, door_statuses)
def test_door_transition_allows_exactly_the_table(current, target):
    if target in DOOR_TRANSITIONS[current]:
        assert door_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition):
            door_transition(current, target)


@given(allocation_statuses, allocation_statuses)
def test_allocation_transition_allows_exactly_the_table(current, target):
    if target in ALLOCATION_TRANSITIONS[current]:
        assert allocation_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as info:
            allocation_transition(current, target)
        assert info.value.current == current.value


@given(st.lists(allocation_statuses, max_size=12))
def test_any_walk_through_allocation_states_ends_final_or_live(steps):
    """Apply random moves, skipping illegal ones: the machine never leaves its states,
    and a final status admits no further move."""
    state = AllocationStatus.RESERVED
    for target in steps:
        try:
            state = allocation_transition(state, target)
        except IllegalTransition:
            continue
    if state.is_final:
        for target in AllocationStatus:
            with pytest.raises(IllegalTransition):
                allocation_transition(state, target)
    else:
        assert state.holds_door


def test_staying_put_is_not_a_transition():
    for status in AllocationStatus:
        with pytest.raises(IllegalTransition):
            allocation_transition(status, status)


def test_every_status_is_reachable_from_reserved():
    seen = {AllocationStatus.RESERVED}
    frontier = [AllocationStatus.RESERVED]
    while frontier:
        for nxt in ALLOCATION_TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(AllocationStatus)


def test_live_allocations_map_to_door_statuses_the_door_machine_can_reach():
    assert set(DOOR_STATUS_FOR_ALLOCATION) == LIVE_ALLOCATION_STATUSES
    for alloc_status, door_status in DOOR_STATUS_FOR_ALLOCATION.items():
        # reserved door -> occupied at deposit, occupied -> awaiting collection at expiry
        for nxt in ALLOCATION_TRANSITIONS[alloc_status]:
            if nxt in DOOR_STATUS_FOR_ALLOCATION:
                assert DOOR_STATUS_FOR_ALLOCATION[nxt] in DOOR_TRANSITIONS[door_status]


def test_physical_fact_expired_parcel_may_still_be_picked_up():
    assert (
        allocation_transition(AllocationStatus.EXPIRED, AllocationStatus.PICKED_UP)
        is AllocationStatus.PICKED_UP
    )


def test_database_check_constraints_list_the_same_statuses(repo_root):
    sql = (repo_root / "cloud/migrations/0001_initial.sql").read_text()
    for status in AllocationStatus:
        assert f"'{status.value}'" in sql
    for status in DoorStatus:
        assert f"'{status.value}'" in sql
