"""Build an agent's namespace from a few services and print it.

    python examples/namespace_tree.py
"""

from __future__ import annotations

from oanix import MemFs, Namespace


def build() -> Namespace:
    task = MemFs()
    task.write_text("/instruction.md", "Create /workspace/hello.txt containing 'hi'.\n")
    workspace = MemFs()
    workspace.makedirs("/src")
    workspace.write_text("/src/main.py", "print('hello')\n")
    tools, extra_tools = MemFs(), MemFs()
    tools.write_bytes("/cat", b"\0asm")
    extra_tools.write_bytes("/python3", b"\0asm")

    ns = Namespace()
    ns.mount("/task", task, readonly=True)
    ns.mount("/workspace", workspace)
    ns.mount("/tmp", MemFs(max_bytes=64 << 20))
    ns.mount("/bin", tools)
    ns.mount("/bin", extra_tools, "after")  # a union: /bin shows both
    ns.mount("/cap/http", MemFs())  # /cap appears because a mount lies below it

    # The agent acts through files.
    ns.write_text("/workspace/hello.txt", "hi\n")
    ns.bind("/workspace/src", "/src")  # an alias, resolved now, as in Plan 9
    return ns


if __name__ == "__main__":
    print(build().tree(), end="")
