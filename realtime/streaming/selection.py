"""What the user picked: a point of the picture, kept in normalised coordinates so that it
survives a change of the feature grid (another camera size); cells derive from it."""
from __future__ import annotations

from pixelplayer.separation import pixel_to_cell

__all__ = ["Selection"]


class Selection:
    """A point (x left->right, y top->bottom, both in [0, 1]) or None (the mixture).

    Swapped whole (one tuple attribute), so a UI thread may set it while a worker reads.
    """

    def __init__(self) -> None:
        self.point: tuple[float, float] | None = None

    def select(self, x: float | None, y: float | None = None) -> None:
        """Follow (x, y), clamped to [0, 1]; x None: the mixture."""
        if x is None:
            self.point = None
            return
        if y is None:
            raise ValueError("select needs both x and y (or None for the mixture)")
        self.point = (min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0))

    def cell(self, grid: tuple[int, int]) -> int | None:
        """The flat index row*cols + col under the point in a (rows, cols) grid, or None."""
        point = self.point
        return None if point is None else pixel_to_cell(*point, 1.0, 1.0, grid[1], grid[0])

    def select_cell(self, cell: int | None, grid: tuple[int, int]) -> None:
        """Follow the centre of a flat cell index of `grid` (None: the mixture)."""
        rows, cols = grid
        if cell is not None and not 0 <= int(cell) < rows * cols:
            raise ValueError(f"cell must be in [0, {rows * cols}), got {cell}")
        self.point = None if cell is None else cell_center(int(cell), grid)


def cell_center(cell: int, grid: tuple[int, int]) -> tuple[float, float]:
    """Normalised (x, y) of a cell's centre in a (rows, cols) grid."""
    rows, cols = grid
    row, col = divmod(int(cell), cols)
    return (col + 0.5) / cols, (row + 0.5) / rows
