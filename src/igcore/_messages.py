"""The words of igcore's errors, written once.

Every sentence a user can read that more than one backend raises (or that the public layer writes in
more than one place) is written here once, as a template named for the fact it states, in UPPER_SNAKE
case, with named ``str.format`` fields. The reference and Cython raise
``Exc(_messages.NAME.format(...))`` (or ``Exc(_messages.NAME)`` when there is nothing to fill in); the
Rust core writes the same words in its error type, and ``tests/test_messages.py`` compares them. The
comments name the exception class of each template, at the end of its line or in its group's heading.
Change a sentence here, and only here: the conformance tests compare messages across backends word for
word.
"""

# -- arguments (public layer) ---------------------------------------------------------------------------

NOT_AN_INT = "{name} must be an int, not {type}"  # TypeError
BOOL_NOT_INT = "{name} must be an int, not bool"  # TypeError
SUGGEST_METHOD = "method must be 'common' or 'adamic_adar', not {method!r}"  # ValueError
OUTSIDE_INT64 = "{name} is outside the int64 range: {value}"  # OverflowError
BELOW_MINIMUM = "{name} must be at least {minimum}, got {value}"  # ValueError
ABOVE_MAXIMUM = "{name} must be at most {maximum}, got {value}"  # ValueError
NOT_ONE_D = "{name} must be 1-D, got an array of shape {shape}"  # ValueError
ARRAY_VALUE_OUTSIDE_INT64 = "{name} holds a value outside the int64 range: {value}"  # OverflowError
LENGTHS_DIFFER = "{first} and {second} differ in length ({first_length} != {second_length})"  # ValueError

# -- timeline -------------------------------------------------------------------------------------------

# timeline_from_bytes: well-formed entries that no timeline holds (ValueError)
NOT_A_TIMELINE_NAN = "not a timeline: a NaN score at entry {entry}"
NOT_A_TIMELINE_ORDER = "not a timeline: entry {entry} does not rank below entry {previous}"
DUPLICATE_POST = "not a timeline: post {post_id} appears twice"
# merge_page: sources out of order (ValueError)
NAN_SCORE_IN_SOURCE = "sources[{index}] has a NaN score at index {entry}"
NOT_FEED_ORDER = (
    "sources[{index}] is not in feed order: entry {entry} ranks above entry {previous} "
    "(feed order is descending by (score, post_id))"
)
# merge_page: sources the kernels refuse (TypeError, and ValueError for CURSOR_SCORE_KIND)
SOURCE_NOT_CANONICAL = (
    "sources[{index}] is not in canonical form: a Timeline of this backend, or three C-contiguous "
    "arrays of one length (int64 or float64 scores, int64 post and author ids)"
)
SOURCES_MIX_SCORE_KINDS = (
    "sources mix int64 and float64 scores (sources[{int_index}] has int64, sources[{float_index}] "
    "has float64); one feed has one score kind: convert explicitly, e.g. with scores.astype(np.float64)"
)
CURSOR_SCORE_KIND = (
    "the cursor belongs to a feed with {cursor_kind} scores; these sources have {sources_kind} scores"
)
# the public layer: sources and timelines (TypeError, and ValueError for NOT_A_TRIPLE)
NOT_A_SOURCE = "{what} must be a Timeline or a (scores, post_ids, author_ids) triple, not {type}"
NOT_A_TRIPLE = "{what} must be a (scores, post_ids, author_ids) triple, got {count} items"
NOT_A_TIMELINE_STORE = "store must be a TimelineStore, not {type}"
SOURCE_OF_ANOTHER_BACKEND = (
    "sources[{index}] is a Timeline of the {backend} backend, and this feed is merged on {feed_backend} "
    "(the backend of the first Timeline); convert it with .to_backend({feed_backend!r})"
)
HELD_BY_ANOTHER_BACKEND = (
    "{what} is held by the {backend} backend and the store by {store_backend}; "
    "convert it with .to_backend({store_backend!r})"
)
# cursors (ValueError)
MALFORMED_CURSOR = "malformed cursor"
# the kernels: sources that are not canonical arrays (TypeError)
NOT_ENTRY_COLUMNS = "insert_many takes three 1-D contiguous arrays of one length"
BACKFILL_SOURCE = "backfill takes a Timeline or three canonical arrays"

# -- counters (OverflowError) ---------------------------------------------------------------------------

TOTAL_OVERFLOW = "the total for key {key} does not fit in int64"
KIND_TOTAL_OVERFLOW = "the {kind} total for key {key} does not fit in int64"
PENDING_DELTA_OVERFLOW = "the pending {kind} delta for key {key} does not fit in int64"
COUNT_OVERFLOW = "the count for key {key} at time {time} does not fit in int64"
WINDOW_TOTAL_OVERFLOW = "the window total for key {key} does not fit in int64"
# the kernels' own checks (ValueError)
NO_KIND = "no kind number {kind}"
KIND_COUNTS_DIFFER = "cannot add a table of {theirs} kinds to one of {mine}"
WINDOW_SHAPE = "bucket_seconds and buckets must be at least 1"
ELEMENT_ENDS_OUT_OF_RANGE = "element ends must rise within the buffer"
ELEMENTS_END_EARLY = "the last element must end with the buffer"
REGISTER_COUNT = "a HyperLogLog has {expected} registers, got {got}"
REGISTER_TOO_LARGE = "register {register} holds {value}, above the largest possible value {max}"

# -- codec (ValueError) ---------------------------------------------------------------------------------

# the envelope; {kind} is "id list" or "entries"
TRUNCATED_ENCODING = "truncated {kind}: {size} bytes, the smallest is {smallest}"
BAD_MAGIC = "not an igcore {kind}: bad magic byte 0x{byte:02x}"
UNSUPPORTED_VERSION = "unsupported {kind} version {version} (this igcore reads version {supported})"
CHECKSUM_MISMATCH = "corrupted {kind}: checksum mismatch"
# the body: MALFORMED_ENCODING, its {reason} one of those that follow
MALFORMED_ENCODING = "malformed {kind}: {reason} at byte {at}"
TRUNCATED_VARINT = "truncated varint"
VARINT_BEYOND_64_BITS = "varint beyond 64 bits"
OVERLONG_VARINT = "overlong varint"
COUNT_EXCEEDS_BYTES_LEFT = "count {count} exceeds the {left} bytes left"
BYTES_AFTER_LAST_VALUE = "{left} bytes after the last value"
UNKNOWN_ENTRY_FLAGS = "unknown flags 0x{flags:02x}"
AUTHOR_TABLE_SIZE_WRONG = "author table of {size} for {entries} entries"
AUTHOR_INDEX_BEYOND_TABLE = "author index {index} beyond the table of {size}"
# encoding entries (ValueError)
ENTRY_LENGTHS_DIFFER = "scores, post_ids and author_ids differ in length ({scores}, {post_ids}, {author_ids})"

# -- graph (ValueError) ---------------------------------------------------------------------------------

# edge lists
EDGE_LIST_COLUMNS = "line {line}: expected 2 or 3 columns, found {found}"
EDGE_LIST_WIDTH = "line {line}: expected {width} columns, found {found}"
EDGE_LIST_NOT_AN_INTEGER = "line {line}: column {column} is not an integer"
EDGE_LIST_OUTSIDE_INT64 = "line {line}: column {column} is outside the int64 range"
# graph files: the structure of the sections
GRAPH_FILE_REPLACED = "the file was replaced while it was loaded"
CORRUPT_IDS_NOT_ASCENDING = "corrupted: user ids are not strictly ascending"
CORRUPT_ID_TABLE_NOT_ONCE = "corrupted: the id table does not hold every user once"
CORRUPT_ID_TABLE_MISSES_USER = "corrupted: the id table does not find every user"
CORRUPT_OFFSETS = "corrupted: list offsets are out of order or out of range"
CORRUPT_FOLLOW_LIST = "corrupted: a follow list is out of range, out of order or holds its own user"
CORRUPT_TIME_ORDER = "corrupted: a list's order by time is wrong"
CORRUPT_NOT_MIRRORED = "corrupted: followers do not mirror following"
CORRUPT_SECTION_OUTSIDE_FILE = "corrupted: a section lies outside the file"
# building and updating
TOO_MANY_USERS = "too many users for one graph"

# -- msgpack: packing -----------------------------------------------------------------------------------

CALL_IN_PROGRESS = "{name} cannot be called while another call on it is in progress"  # RuntimeError
CHANGED_SIZE = "{what} changed size during iteration"  # RuntimeError
RECURSION_LIMIT = "recursion limit exceeded."  # ValueError
# Packer.pack_array_header, pack_map_header, pack_ext_type (ValueError)
ARRAY_SIZE_NEGATIVE = "array size must be non-negative"
MAP_SIZE_NEGATIVE = "map size must be non-negative"
ARRAY_HEADER_TOO_LARGE = "array too large"
MAP_HEADER_TOO_LARGE = "map too large"
EXT_HEADER_TOO_LARGE = "ext data too large"
# objects too large for msgpack (ValueError)
OBJECT_TOO_LARGE = "{type} object is too large"
STR_TOO_LARGE = "unicode string is too large"
DICT_TOO_LARGE = "dict is too large"
LIST_TOO_LARGE = "list is too large"
EXT_TOO_LARGE = "EXT data is too large"
MEMORYVIEW_TOO_LARGE = "memoryview is too large"
MEMORYVIEW_NOT_CONTIGUOUS = "memoryview: underlying buffer is not C-contiguous"  # BufferError
# numbers out of range (OverflowError)
INT_OUT_OF_RANGE = "Integer value out of range"
INT_TOO_LARGE_FOR_C_LONG = "Python int too large to convert to C long"
EXT_CODE_TOO_LARGE = "value too large to convert to char"
FLOAT_TOO_LARGE = "float too large to pack with f format"
# what cannot be packed
NAIVE_DATETIME = "can not serialize {type!r} object where tzinfo=None"  # ValueError
CANNOT_SERIALIZE = "can not serialize {type!r} object"  # TypeError

# -- msgpack: unpacking ---------------------------------------------------------------------------------

INCOMPLETE_INPUT = "Unpack failed: incomplete input"  # ValueError
INVALID_BYTE = "invalid msgpack: byte 0x{byte:02x} at offset {offset} starts no type"  # FormatError
NESTED_TOO_DEEP = "containers nested deeper than {levels} levels"  # StackError
LIMIT_EXCEEDED = "{length} exceeds {limit_name}({limit})"  # ValueError
MAP_KEY_NOT_ALLOWED = "{type} is not allowed for map key when strict_map_key=True"  # ValueError
INVALID_TIMESTAMP = "invalid timestamp data (length {length})"  # ValueError
TIMESTAMP_NANOSECONDS = "nanoseconds must be a non-negative integer not greater than 999999999."  # ValueError
TIMESTAMP_DAYS_OVERFLOW = "days={days}; too large to convert to C int"  # OverflowError
# Unpacker streams
READ_NOT_BYTES = "file_like.read() must return bytes, not {type}"  # TypeError
NO_MORE_DATA = "No more data to unpack."  # OutOfData
UNEXPECTED_TYPE_HEADER = "Unexpected type header on stream"  # ValueError
# options (TypeError)
NOT_CALLABLE = "{name} must be a callable."

# -- what the compiled kernels check again at their border --------------------------------------------
# The public layer hands the kernels checked arguments, so the reference never raises these; the Rust and
# Cython kernels check again (they must never read memory on the strength of an unchecked claim).

OUT_OF_MEMORY = "out of memory while {doing}"  # MemoryError
OBJECT_POISONED = "this object is unusable after an internal error in another call"  # RuntimeError
NOT_CONTIGUOUS = "{name} must be a C-contiguous array"  # ValueError
TOO_MANY_IDS = "more than {max} distinct ids in one index"  # ValueError
# timeline
ACTIVITY_LENGTHS_DIFFER = (
    "actor_ids, verbs, target_ids and timestamps differ in length "
    "({actor_ids}, {verbs}, {target_ids}, {timestamps})"
)  # ValueError
# graph
TIMESTAMPS_FOR_TIMED_GRAPH = "timestamps must be given exactly for a timed graph"  # ValueError
SECTION_CHECKSUM = "corrupted: the checksum of section {section} does not match"  # ValueError
CORRUPT_SECTION_LENGTH = "corrupted: a section's length does not fit the graph's size"  # ValueError
BIG_ENDIAN_MACHINE = "graph files are little-endian; this machine is not"  # ValueError
CANNOT_READ = "cannot read the file: {reason}"  # ValueError
CANNOT_WRITE = "cannot write {path}: {reason}"  # ValueError
NO_MEMORY_FOR_GRAPH = "not enough memory for the graph"  # MemoryError
