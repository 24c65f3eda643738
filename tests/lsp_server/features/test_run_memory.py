"""memlens.lsp_server.features.run_memory: where the run-memory diagnostic sits."""

from __future__ import annotations

from memlens.lsp_server.features.run_memory import entry_line


def test_entry_line_is_the_main_guard_else_the_first_line() -> None:
    assert entry_line(["import os", "", "if __name__ == '__main__':", "    main()"]) == 2
    assert entry_line(['if __name__=="__main__":']) == 0
    assert entry_line(["import os", "main()"]) == 0
    assert entry_line(["    if __name__ == '__main__':"]) == 0  # nested: not the entry
