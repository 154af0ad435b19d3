package ring

import "fmt"

// Op names the kind of request a completion answers.
type Op uint8

const (
	OpNone         Op = iota
	OpAccept          // multishot accept on a listener; slot = listener index
	OpRecv            // receive into a provided buffer
	OpSend            // send from an arena buffer
	OpConnect         // server-side connect
	OpShutdown        // shutdown(SHUT_WR)
	OpCancel          // cancel of other requests; its own result is informational
	OpClose           // close of an fd; never delivered to callers
	OpWake            // cross-thread wakeup (eventfd read)
	OpSendBytes       // send from caller memory (a protocol header), not the arena
	OpPollIn          // wait until readable (a spliced stream's producer)
	OpPollOut         // wait until writable (a spliced stream's consumer)
	OpCancelAccept    // cancel of a listener's accept; slot = listener index
	opCount
)

var opNames = [...]string{"none", "accept", "recv", "send", "connect", "shutdown", "cancel", "close", "wake", "send-bytes", "poll-in", "poll-out", "cancel-accept"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// UserData is the 64-bit tag carried from a request to its completions:
// op in the top 8 bits, a 24-bit generation, and a 32-bit slot. The
// generation lets the owner of slot recognise a late completion for a
// slot that has since been recycled; fds are never used as tags because
// the kernel reuses them at once.
type UserData uint64

// GenMask bounds generations: callers wrap their counters with it.
const GenMask = 1<<24 - 1

// Pack builds a UserData. gen is truncated to 24 bits.
func Pack(op Op, slot uint32, gen uint32) UserData {
	return UserData(uint64(op)<<56 | uint64(gen&GenMask)<<32 | uint64(slot))
}

func (u UserData) Op() Op       { return Op(u >> 56) }
func (u UserData) Gen() uint32  { return uint32(u>>32) & GenMask }
func (u UserData) Slot() uint32 { return uint32(u) }

func (u UserData) String() string {
	return fmt.Sprintf("%s/slot %d/gen %d", u.Op(), u.Slot(), u.Gen())
}
