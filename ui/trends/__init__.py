"""The parts of the Trends page: the filter form and the numbers (with their CSV) beside each figure."""
