"""Tests that attack the gateway: property tests of the decoder, a randomized stress test over a
real gateway, and attacks over the wire that once broke it."""
