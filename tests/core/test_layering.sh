# SPDX-License-Identifier: MIT
# tests/core/test_layering.sh - the include rules of ARCHITECTURE.md, checked
# against every #include of src/.
#
#   bash tests/core/test_layering.sh [SRC_ROOT]
#
# Reads the table between the "layering" markers of ARCHITECTURE.md (one row
# per module: "module: the modules it may include"), checks that the table is
# layered (a row names only rows above it), that every folder under src/ has
# a row, and that no file of src/<module>/ includes a header of a module its
# row does not name.  Each offending line is printed with its file and line.
# SRC_ROOT (default: this tree) checks another tree's src/ against this
# tree's table, e.g. an older commit's:
#   mkdir /tmp/old && git archive 2ec42cd src | tar -x -C /tmp/old
#   bash tests/core/test_layering.sh /tmp/old   # core and runner fail, by line
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
src_root=${1:-$top}
file=test_layering
failures=0
ok() { echo "ok - $file/$1"; }
not_ok() { echo "not ok - $file/$1: $2"; failures=$((failures + 1)); }

table=$(sed -n '/<!-- layering:/,/<!-- layering end -->/p' "$top/ARCHITECTURE.md" | grep -E '^[a-z]+:')
if [ -z "$table" ]; then
    not_ok table_found "no layering table between the markers in $top/ARCHITECTURE.md"
    exit 1
fi
ok table_found

declare -A allowed row_of
order=()
while IFS= read -r line; do
    m=${line%%:*}
    allowed[$m]=" $(echo "${line#*:}" | tr -s ' \t' ' ' | sed 's/^ //; s/ $//') "
    row_of[$m]=${#order[@]}
    order+=("$m")
done <<<"$table"

# The table itself: a row may name only modules of rows above it.
bad=
for m in "${order[@]}"; do
    for dep in ${allowed[$m]}; do
        if [ -z "${row_of[$dep]+x}" ]; then bad+="$m names '$dep', which has no row; "
        elif [ "${row_of[$dep]}" -ge "${row_of[$m]}" ]; then bad+="$m (row ${row_of[$m]}) names $dep (row ${row_of[$dep]}), not above it; "
        fi
    done
done
[ -z "$bad" ] && ok table_is_layered || not_ok table_is_layered "$bad"

# Every module of the tree has a row.
unmapped=
for dir in "$src_root"/src/*/; do
    m=$(basename "$dir")
    [ -z "${row_of[$m]+x}" ] && unmapped+="src/$m "
done
[ -z "$unmapped" ] && ok every_module_has_a_row || \
    not_ok every_module_has_a_row "${unmapped}has no row in ARCHITECTURE.md's layering table"

# Every include of a module's files.
for m in "${order[@]}"; do
    [ -d "$src_root/src/$m" ] || continue
    offending=
    while IFS= read -r hit; do
        [ -z "$hit" ] && continue
        # hit: path:line:#include "dep/file.h"
        inc=$(echo "$hit" | sed -E 's/^[^:]+:[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/')
        case $inc in */*) dep=${inc%%/*} ;; *) continue ;; esac
        [ "$dep" = "$m" ] && continue
        [ -z "${row_of[$dep]+x}" ] && [ ! -d "$src_root/src/$dep" ] && continue   # not a module's header
        case "${allowed[$m]}" in *" $dep "*) continue ;; esac
        offending+="${hit#"$src_root"/}; "
    done < <(grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$src_root/src/$m"/*.[ch] 2>/dev/null)
    if [ -z "$offending" ]; then ok "${m}_includes"
    else
        may=$(echo ${allowed[$m]})
        not_ok "${m}_includes" "${offending}(src/$m may include ${may:-no other module})"
    fi
done

exit $((failures > 0))
