"""The development stack: what ``make run`` and the tests start (embedded servers, the whole-stack
launcher, in-process harnesses, pytest fixtures). Development only: no service depends on it."""
