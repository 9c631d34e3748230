package kube

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// audit records an action that must stay traceable (acceptance, promotion,
// rollback, restore, anonymization, erasure) twice: as an Event on obj and
// as a log line of the "audit" logger with audit=true, which log pipelines
// can route to long-term storage. Neither carries personal data: callers
// pass object names and counts, never e-mail addresses or user names (who
// accepted an increment is recorded on the Increment itself, readable only
// by those who may read the Increment).
func Audit(ctx context.Context, rec events.EventRecorder, obj client.Object, typ, reason, action, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	rec.Eventf(obj, nil, typ, reason, action, "%s", msg)
	kind := fmt.Sprintf("%T", obj)
	kind = kind[strings.LastIndex(kind, ".")+1:]
	log.FromContext(ctx).WithName("audit").Info(msg, "audit", true, "action", action, "reason", reason,
		"kind", kind, "namespace", obj.GetNamespace(), "name", obj.GetName())
}
