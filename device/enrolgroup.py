"""Which captures count towards an enrolment, one capture at a time.

Why not simply "the largest agreeing group so far": that group can jump (2/5 -> 4/5 when one capture links two
groups) and can be another finger's (two touches of the wrong finger outnumber one of the right one), so the count
a person sees would not be the finger being enrolled. Here the group is anchored on the first good capture and
grows by at most one capture per touch: a capture counts when it belongs to the same agreeing (connected) group
as every capture already counted. One exception: when only the first capture is counted and a later pair agrees
without it, the first capture was the stray (a different finger or a bad placement) and the pair takes over.
"""

from __future__ import annotations


def grow_group(group: list[int], largest: list[int], newest: int) -> list[int]:
    """The counted captures after capture ``newest``; ``largest`` is the largest connected agreeing group of all."""
    if not group:
        return [newest]
    members = set(largest)
    if newest in members and set(group) <= members:
        return [*group, newest]
    if len(group) == 1 and newest in members and group[0] not in members and len(members) >= 2:
        earlier = [i for i in largest if i != newest][:1]
        return [*earlier, newest]
    return group
