"""Live progress of a run on stderr (rich), as a Reporter for the harness."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.results.schema import KernelResult


class RichReporter:
    """Show one progress bar per kernel (epochs done / total) with its latest epoch time and accuracy."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.fields[name]:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def kernel_started(self, name: str, epochs: int) -> None:
        self.current = self.tasks[name] = self.progress.add_task("", total=epochs, name=name, status="starting")

    def _task(self, name: str) -> int:
        """Return the kernel's bar; a kernel given as a path is started under the path and named later."""
        return self.tasks.get(name, self.current)

    def phase(self, name: str, text: str) -> None:
        task = self._task(name)
        done = self.progress.tasks[task].fields.get("last", "")
        self.progress.update(task, status=f"{text} {done}".strip())

    def epoch_done(self, name: str, epoch: int, seconds: float, accuracy: float) -> None:
        last = f"(last: {seconds:.3f} s, {100 * accuracy:.2f}%)"
        self.progress.update(self._task(name), advance=1, last=last, status=last)

    def kernel_done(self, result: KernelResult) -> None:
        task = self._task(result.name)
        status = result.status if result.status == "ok" else f"[bold red]{result.status}[/]"
        self.progress.update(task, status=f"{status} {self.progress.tasks[task].fields.get('last', '')}")
        if result.message and result.status != "ok":
            self.console.print(f"[red]{escape(result.name)}: {result.status}: {escape(result.message)}[/]")
