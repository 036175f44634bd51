package latency

import (
	"fmt"
	"os"

	"github.com/scxkit/scxkit/internal/privilege"
)

// ErrPermission is wrapped by the error Start returns when the kernel
// refuses to raise the memlock limit, create the maps, load the programs or
// attach them for want of privileges. It wraps os.ErrPermission, so
// errors.Is(err, os.ErrPermission) holds too. The message says which
// capabilities are needed and how to get them.
var ErrPermission = fmt.Errorf("latency: %w", os.ErrPermission)

// privilegesHint says what Start needs and how to get it.
const privilegesHint = "profiling needs CAP_BPF and CAP_PERFMON, and CAP_SYS_RESOURCE to raise the memlock limit " +
	"on kernels that charge BPF memory to it: run as root (sudo), or give the program those capabilities with " +
	"sudo setcap cap_bpf,cap_perfmon,cap_sys_resource+ep PROGRAM"

// permissionError wraps err with ErrPermission and privilegesHint when
// the kernel refused for want of privileges (EPERM), and returns it
// unchanged otherwise.
func permissionError(err error) error {
	return privilege.Wrap(err, ErrPermission, privilegesHint)
}
