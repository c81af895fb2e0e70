# SPDX-License-Identifier: MIT
# tests/cli/test_docs.sh - the man pages and completion scripts that
# `vram --generate` writes from the --help tables: every command has a page
# that man reads without a warning, every flag --help lists is on its page,
# and bash completes commands and flags.
. "$(dirname "$0")/lib.sh"
man_dir=$VRAM_BUILD/share/man
cmds=$("$VRAM" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}')
[ -n "$cmds" ] && ok listed_commands || not_ok listed_commands "vram --help lists none"

mkdir -p "$tmp/man/man1" "$tmp/man/man8"
expect generate_all 0 '' -- "$VRAM" --generate man-all "$tmp/man"
expect generate_bad 2 'takes man-all DIR' -- "$VRAM" --generate nonsense

if command -v man >/dev/null; then
    bad=""
    for page in "$tmp"/man/man1/*.1 "$tmp"/man/man8/*.8; do
        warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
        [ -z "$warn" ] || bad="$bad $(basename "$page"): $(echo "$warn" | head -n 2)"
    done
    [ -z "$bad" ] && ok pages_without_warnings || not_ok pages_without_warnings "$bad"
else
    echo "skip - $file/pages_without_warnings: man is not installed"
fi

missing=""
for c in $cmds; do
    page=$tmp/man/man1/vram-$c.1
    [ -s "$page" ] || { missing="$missing vram-$c.1"; continue; }
    # Every flag the help screen lists is on the page (roff writes - as \-).
    for flag in $("$VRAM" "$c" --help | grep -Eo '^ +(-[a-z], )?--[a-z-]+' | grep -Eo -- '--[a-z-]+'); do
        grep -qF -- "$(echo "$flag" | sed 's/-/\\-/g')" "$page" || missing="$missing $c:$flag"
    done
done
[ -z "$missing" ] && ok every_command_and_flag_on_a_page || not_ok every_command_and_flag_on_a_page "$missing"
# Each --help tells the truth: every long option it lists is listed once
# (watch's own --interval shadows the monitor's setting, which it then names
# by VRAM_INTERVAL only), and every one it lists is one the parser accepts:
# `--NAME=x --help` is refused as "takes no value" for a switch, prints help
# for an option with a value, and never says "unknown option".
twice=""; unknown=""
for c in $cmds; do
    listed=$("$VRAM" "$c" --help | grep -Eo '^ +(-[a-z], )?--[a-z-]+' | grep -Eo -- '--[a-z-]+')
    twice="$twice$(echo "$listed" | sort | uniq -d | sed "s/^/ $c:/" | tr -d '\n')"
    for flag in $listed; do
        out=$("$VRAM" "$c" "$flag=x" --help 2>&1 </dev/null)
        case $out in *"unknown option"*) unknown="$unknown $c:$flag" ;; esac
    done
    # ... and a word it does not list is refused, naming it.
    out=$("$VRAM" "$c" --no-such-option 2>&1 </dev/null)
    case $out in *"unknown option '--no-such-option'"*) ;; *) unknown="$unknown $c:(accepts anything)" ;; esac
done
# ... and the text above the options names only options it lists (another
# command's are written with their command: 'vram submit --output').
unlisted=""
for c in $cmds; do
    "$VRAM" "$c" --help >"$tmp/help"
    listed=$(grep -Eo '^ +(-[a-z], )?--[a-z-]+' "$tmp/help" | grep -Eo -- '--[a-z-]+')
    for w in $(sed '/^options:/,$d' "$tmp/help" | sed -E 's/vram [a-z]+ --[a-z-]+//g' | grep -Eo -- '--[a-z][a-z-]+' | sort -u); do
        echo "$listed" | grep -qx -- "$w" || unlisted="$unlisted $c:$w"
    done
done
[ -z "$unlisted" ] && ok help_text_names_only_listed_options || not_ok help_text_names_only_listed_options "$unlisted"
[ -z "$twice" ] && ok help_lists_each_option_once || not_ok help_lists_each_option_once "$twice"
[ -z "$unknown" ] && ok help_lists_only_accepted_options || not_ok help_lists_only_accepted_options "$unknown"
"$VRAM" watch --help | grep -q '^  *VRAM_INTERVAL .*only as VRAM_INTERVAL here' \
    && ok watch_help_names_shadowed_setting_by_env || not_ok watch_help_names_shadowed_setting_by_env \
       "$("$VRAM" watch --help | grep INTERVAL)"
grep -q '^\\fBVRAM_INTERVAL\\fR$' "$tmp/man/man1/vram-watch.1" \
    && ! grep -q '^\\fB\\-\\-interval\\fR, \\fBVRAM_INTERVAL' "$tmp/man/man1/vram-watch.1" \
    && ok watch_page_names_shadowed_setting_by_env || not_ok watch_page_names_shadowed_setting_by_env \
       "$(grep -n INTERVAL "$tmp/man/man1/vram-watch.1")"
# Started as vramd (make install links it), its help names vramd, as vramd(8) does.
ln -s "$VRAM" "$tmp/vramd"
expect vramd_help_names_vramd 0 '^usage: vramd \[--socket PATH\]' -- "$tmp/vramd" --help
[ -s "$tmp/man/man8/vramd.8" ] && grep -q '^\.TH "VRAMD" "8"' "$tmp/man/man8/vramd.8" \
    && ok vramd_page_in_section_8 || not_ok vramd_page_in_section_8 "no vramd.8"
# The pages are the same on every build: nothing of the time or the machine.
mkdir -p "$tmp/again/man1" "$tmp/again/man8"
"$VRAM" --generate man-all "$tmp/again" >/dev/null 2>&1
diff -r "$tmp/man" "$tmp/again" >/dev/null && ok reproducible || not_ok reproducible "two runs differ"

# bash completion: source the script and ask it as bash's completer would.
"$VRAM" --generate bash >"$tmp/vram.bash"
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vram vram; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$tmp/vram.bash" "$@"
}
got=$(complete_words vram sub)
[ "$got" = submit ] && ok bash_completes_command || not_ok bash_completes_command "got '$got'"
got=$(complete_words vram run --vr)
[ "$got" = --vram ] && ok bash_completes_flag || not_ok bash_completes_flag "got '$got'"
got=$(complete_words vram status --mar)
[ "$got" = --margin ] && ok bash_completes_setting || not_ok bash_completes_setting "got '$got'"
got=$(complete_words vram run -- python --vr)
[ -z "$got" ] && ok bash_stops_after_dashdash || not_ok bash_stops_after_dashdash "got '$got'"

got=$(complete_words vram watch --interv)
[ "$got" = --interval ] && ok bash_completes_shadowed_flag_once || not_ok bash_completes_shadowed_flag_once "got '$got'"

"$VRAM" --generate zsh >"$tmp/_vram"
if command -v zsh >/dev/null; then
    expect zsh_script_parses 0 '' -- zsh -n "$tmp/_vram"
else
    echo "skip - $file/zsh_script_parses: zsh is not installed"
fi
grep -q "^#compdef vram vramd" "$tmp/_vram" && ok zsh_compdef_line || not_ok zsh_compdef_line "no #compdef"
finish
