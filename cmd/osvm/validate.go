package main

import (
	"fmt"
	"os"

	"github.com/osvm-project/osvm/internal/config"
)

// runValidate checks component files and prints every problem found, one
// per line, as FILE:LINE: MESSAGE.
func runValidate(args []string) error {
	if len(args) == 0 {
		return &usageError{"no file given"}
	}
	failed := false
	for _, path := range args {
		if _, err := config.Load(path); err != nil {
			failed = true
			if problems := config.Errors(err); len(problems) > 0 {
				for _, p := range problems {
					fmt.Fprintln(os.Stderr, p)
				}
			} else {
				fmt.Fprintln(os.Stderr, err)
			}
			continue
		}
		fmt.Printf("%s: valid\n", path)
	}
	if failed {
		return errReported
	}
	return nil
}
