"""What the user picked: points of the picture, kept in normalised coordinates so that they
survive a change of the feature grid (another camera size); cells derive from them."""
from __future__ import annotations

from pixelplayer.separation import pixel_to_cell

__all__ = ["Selection"]


class Selection:
    """Points (x left->right, y top->bottom, both in [0, 1]); none: the mixture.

    One point is one player; `add` selects several (their sounds together). Swapped whole
    (one tuple attribute), so a UI thread may set it while a worker reads.
    """

    def __init__(self) -> None:
        self.points: tuple[tuple[float, float], ...] = ()

    @property
    def point(self) -> tuple[float, float] | None:
        """The first selected point, or None."""
        points = self.points
        return points[0] if points else None

    def select(self, x: float | None, y: float | None = None) -> None:
        """Follow (x, y) alone, clamped to [0, 1]; x None: the mixture."""
        self.points = () if x is None else (_clamped(x, y),)

    def add(self, x: float, y: float) -> None:
        """Follow (x, y) as well as the points already selected."""
        self.points = self.points + (_clamped(x, y),)

    def cell(self, grid: tuple[int, int]):
        """What is selected in a (rows, cols) grid: None, a flat index row*cols + col, or a
        sorted tuple of several distinct indices (points on one cell count once)."""
        cells = sorted({pixel_to_cell(*p, 1.0, 1.0, grid[1], grid[0]) for p in self.points})
        if not cells:
            return None
        return cells[0] if len(cells) == 1 else tuple(cells)

    def select_cell(self, cell: int | None, grid: tuple[int, int]) -> None:
        """Follow the centre of a flat cell index of `grid` (None: the mixture)."""
        rows, cols = grid
        if cell is not None and not 0 <= int(cell) < rows * cols:
            raise ValueError(f"cell must be in [0, {rows * cols}), got {cell}")
        self.points = () if cell is None else (cell_center(int(cell), grid),)


def _clamped(x: float, y: float | None) -> tuple[float, float]:
    if y is None:
        raise ValueError("select needs both x and y (or None for the mixture)")
    return min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0)


def cell_center(cell: int, grid: tuple[int, int]) -> tuple[float, float]:
    """Normalised (x, y) of a cell's centre in a (rows, cols) grid."""
    rows, cols = grid
    row, col = divmod(int(cell), cols)
    return (col + 0.5) / cols, (row + 0.5) / rows
