"""Checks that run before BasicSR writes anything: every typed option block is built (:mod:`.blocks`)."""
