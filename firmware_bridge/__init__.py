"""The authenticated serial link between the biolock board and the lock controller (see PROTOCOL.md).

Host side: ``cobs`` and ``frame`` (wire format), ``messages`` (payloads), ``link`` (the state machine over
pyserial), ``pairing`` and ``counters`` (what is kept on disk). Lock side: ``firmware/`` (MicroPython, runs
unchanged under CPython via ``shim/``) and ``emulator`` (that firmware behind a pty, with fault injection).
Benchmarks: ``fuzz`` and ``soak`` (``biolock lock fuzz|soak``).
"""
