"""The application: the command line, the live view and the other ways a person uses the agent.

It may import everything below it (benchmarks, the core, the stages); nothing imports it.
"""
