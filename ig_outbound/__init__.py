"""ig-outbound: a queue-driven outbound message worker for the Instagram Messaging API.

One import package, its parts mapped from the repository's top-level folders:

    ig_outbound.producers   the public contract and the producer side (producers/)
    ig_outbound.worker      the ARQ worker (worker/)
    ig_outbound.emulator    a local graph.instagram.com (emulator/; extra `[emulator]`)
    ig_outbound.harness     local processes for the demo, tests and benchmarks
    ig_outbound.cli         the `ig-outbound` command

Which may import which: docs/architecture.md ("Packages").
"""

__version__ = "0.2.0"
