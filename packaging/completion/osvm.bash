# bash completion for osvm(1). Installed as
# /usr/share/bash-completion/completions/osvm.

# _osvm_components prints the component names that `osvm list` returns,
# or the names of the files in /etc/osvm when osvmd is not running.
_osvm_components()
{
    local names
    names=$(osvm list 2>/dev/null | awk 'NR > 1 { print $1 }')
    if [[ -z $names ]]; then
        names=$(compgen -G '/etc/osvm/*.toml' | sed 's|.*/||; s|\.toml$||')
    fi
    printf '%s\n' "$names"
}

_osvm()
{
    local cur prev words cword
    _init_completion || return

    # The usage lines of `osvm help` name every subcommand.
    local commands
    commands="$(osvm help 2>&1 | awk '$1 == "osvm" { print $2 }') help"
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi

    case ${words[1]} in
    validate | run)
        _filedir toml
        ;;
    list)
        COMPREPLY=($(compgen -W '--json' -- "$cur"))
        ;;
    status)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '--json' -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_osvm_components)" -- "$cur"))
        fi
        ;;
    start | stop | restart)
        if ((cword == 2)); then
            COMPREPLY=($(compgen -W "$(_osvm_components)" -- "$cur"))
        fi
        ;;
    logs)
        case $prev in
        -n)
            return
            ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '-f -n' -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_osvm_components)" -- "$cur"))
        fi
        ;;
    esac
} &&
    complete -F _osvm osvm
