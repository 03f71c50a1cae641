"""The matplotlib backend of script runs: every figure shown or saved becomes an image tab.

Runs get ``MPLBACKEND=module://appliance.runs.mplbackend``.  Drawing is
matplotlib's own Agg renderer; ``plt.show()`` and ``fig.savefig(...)`` then
send the figure as a PNG to a ``base:image`` tab named after the figure
(``Figure 1`` or the figure's label), replacing what that tab showed before.
``savefig`` still writes its file as usual, so a figure saved in the run's
output folder is kept with the run too.

A script that uses ``browserinterface`` sends through its connection; one that
only plots gets a short-lived connection of its own, so ``plt.show()`` returns
and the script ends when it is done, as a plotting script does elsewhere.
"""

from __future__ import annotations

import base64
import io
import sys
import threading
from typing import Any

from matplotlib.backend_bases import _Backend
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import browserinterface
from browserinterface import Device, Handler, SetupError

IMAGE_TYPE = "base:image"
#: Pixels per inch of the PNG sent: a 6.4 x 4.8 in figure is 640 x 480.
SEND_DPI = 100

_lock = threading.Lock()
_tabs: dict[tuple[int, str], Handler] = {}
_own: Device | None = None


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # Agg's own print_figure: ours would send again, and a new canvas would
    # take the figure away from the one pyplot gave it.
    FigureCanvasAgg.print_figure(figure.canvas, buffer, format="png", dpi=SEND_DPI)
    return buffer.getvalue()


def _title(figure: Figure) -> str:
    label = str(figure.get_label() or "")
    return label or f"Figure {getattr(figure, 'number', 1)}"


def _device() -> Device | None:
    """The script's own connection when it has started one, else a device object of ours."""
    global _own
    default = browserinterface._device
    if default.connection is not None:
        return default
    if _own is None:
        own = Device(browserinterface.bi_board_ip or browserinterface.board_ip)
        try:
            own.start()
        except SetupError as exc:
            print(f"matplotlib: the figure is not shown: {exc}", file=sys.stderr)
            return None
        _own = own
        # Sends what is queued before the interpreter ends, so the last figure arrives.
        browserinterface._at_main_exit(own.stop)
    return _own


def send_figure(figure: Figure) -> None:
    """Show ``figure`` in its image tab (made on first use)."""
    data = {"src": "data:image/png;base64," + base64.b64encode(_png(figure)).decode("ascii")}
    title = _title(figure)
    with _lock:
        device = _device()
        if device is None:
            return
        key = (id(device), title)
        if key not in _tabs:
            _tabs[key] = device.add_handler(title, IMAGE_TYPE, {})
        _tabs[key].send_data(data)


class FigureCanvasDevice(FigureCanvasAgg):
    """Agg drawing; a saved figure is also shown in its tab."""

    def print_figure(self, *args: Any, **kwargs: Any) -> Any:
        """Save as matplotlib does, then show the figure in the page."""
        result = super().print_figure(*args, **kwargs)
        send_figure(self.figure)
        return result


@_Backend.export
class _BackendDevice(_Backend):
    FigureCanvas = FigureCanvasDevice

    @staticmethod
    def show(*args: Any, **kwargs: Any) -> None:
        """Send every open figure to its tab; returns at once."""
        from matplotlib import pyplot  # noqa: PLC0415  (pyplot imports this module)

        for number in pyplot.get_fignums():
            send_figure(pyplot.figure(number))
