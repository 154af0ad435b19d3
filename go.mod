module ringproxy

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/pawelgaczynski/giouring v0.0.0-20230826085535-69588b89acb9
	golang.org/x/sys v0.50.0
)
