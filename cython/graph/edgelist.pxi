# Reading edge-list text as SNAP ships it; see the reference's parse_edgelist for the rules
# (rust/igcore-core/src/graph/edgelist.rs). Included by _cy_graph.pyx.

cdef int _parse_field(const unsigned char* text, size_t start, size_t end, int64_t* value) noexcept nogil:
    """0, or 3 (not an integer) or 4 (outside int64), as the reference checks: digits first, then range."""
    cdef bint negative = text[start] == 45
    cdef size_t k
    cdef uint64_t magnitude = 0, digit
    cdef uint64_t limit = ((<uint64_t>1) << 63) if negative else INT64_MAX_U
    if text[start] == 45 or text[start] == 43:
        start += 1
    if start == end:
        return 3
    for k in range(start, end):
        if text[k] < 48 or text[k] > 57:
            return 3
    for k in range(start, end):
        digit = text[k] - 48
        if magnitude > (limit - digit) // 10:
            return 4
        magnitude = magnitude * 10 + digit
    value[0] = <int64_t>(0 - magnitude) if negative else <int64_t>magnitude
    return 0


def parse_edgelist(const unsigned char[::1] data):
    """See the reference's parse_edgelist."""
    cdef size_t length = data.shape[0], pos = 0, end, stop, k, line_number = 0
    cdef const unsigned char* text = &data[0] if length else <const unsigned char*>b""
    cdef int width = 0, fields = 0, column, error = 0, error_column = 0
    cdef size_t starts[3]
    cdef size_t ends[3]
    cdef int64_t values[3]
    cdef vector[int64_t] first, second, third
    with nogil:
        while pos <= length:
            line_number += 1
            end = pos
            while end < length and text[end] != 10:
                end += 1
            stop = end
            if stop > pos and text[stop - 1] == 13:
                stop -= 1
            # Fields: runs of anything but spaces and tabs.
            fields = 0
            k = pos
            while k < stop:
                while k < stop and (text[k] == 32 or text[k] == 9):
                    k += 1
                if k >= stop:
                    break
                if fields < 3:
                    starts[fields] = k
                while k < stop and text[k] != 32 and text[k] != 9:
                    k += 1
                if fields < 3:
                    ends[fields] = k
                fields += 1
            pos = end + 1
            if fields == 0 or text[starts[0]] == 35:  # blank, or a '#' comment
                continue
            if width == 0:
                if fields < 2 or fields > 3:
                    error = 1
                    break
                width = fields
            elif fields != width:
                error = 2
                break
            for column in range(width):
                error = _parse_field(text, starts[column], ends[column], &values[column])
                if error:
                    error_column = column + 1
                    break
            if error:
                break
            first.push_back(values[0])
            second.push_back(values[1])
            if width == 3:
                third.push_back(values[2])
    if error == 1:
        raise ValueError(_messages.EDGE_LIST_COLUMNS.format(line=line_number, found=fields))
    if error == 2:
        raise ValueError(_messages.EDGE_LIST_WIDTH.format(line=line_number, width=width, found=fields))
    if error == 3:
        raise ValueError(_messages.EDGE_LIST_NOT_AN_INTEGER.format(line=line_number, column=error_column))
    if error == 4:
        raise ValueError(_messages.EDGE_LIST_OUTSIDE_INT64.format(line=line_number, column=error_column))
    return _array(&first), _array(&second), (_array(&third) if width == 3 else None)


cdef object _array(vector[int64_t]* values):
    if values.size() == 0:
        return np.empty(0, np.int64)
    return np.array(<int64_t[:values.size()]>values.data(), dtype=np.int64)
