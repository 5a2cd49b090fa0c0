"""The whole-member simulator: real MemberCores, simulated clients, faults from one seed.

Everything a member decides runs here as it runs in the server: each member
is a `MemberCore` (coord.server.core.member) over a simulated disk, its
Readys carried out in their stated order (sometimes slowly, sometimes torn
by a crash); the members talk through the real peer codec over simulated
links that delay, lose and partition; simulated clients hold real sessions
with the client library's own sans-IO protocol (coord.client.protocol),
fail over between members with their last zxid, resend their writes in
flight, and use the whole API. Checkers (coord.server.sim.checks) hold the
guarantees after every step and at the end.

Run seeds:

    python -m coord.server.sim --seeds 1000          # seeds 0..999
    python -m coord.server.sim --seed 1234 --trace   # one seed, with its event trace

Everything random comes from one `random.Random(seed)`, and nothing iterates
a set or reads a clock, so a seed replays exactly.
"""
