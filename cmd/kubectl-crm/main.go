// Command kubectl-crm is the crm-operator's kubectl plugin (`kubectl crm`):
// a status table of a project and the everyday actions on its environments
// and increments. Install it on the PATH (`make install-plugin`); kubectl
// finds it by its name. It takes kubectl's connection flags (--kubeconfig,
// --context, -n, --as, ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		if errors.Is(err, plugin.ErrNotSucceeded) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

func newCommand() *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	var timeout time.Duration
	cli := &plugin.CLI{Out: os.Stdout}
	root := &cobra.Command{
		Use:           "kubectl-crm",
		Short:         "Operate CRM implementation projects run by crm-operator",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			scheme := runtime.NewScheme()
			utilruntime.Must(clientgoscheme.AddToScheme(scheme))
			utilruntime.Must(crmv1alpha1.AddToScheme(scheme))
			if cli.Client, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme}); err != nil {
				return err
			}
			if cli.Namespace, _, err = flags.ToRawKubeConfigLoader().Namespace(); err != nil {
				return err
			}
			cli.Timeout = timeout
			return nil
		},
	}
	flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().DurationVar(&timeout, "wait-timeout", 30*time.Minute, "How long --wait waits.")

	var comment string
	var waitFor, confirm bool
	accept := &cobra.Command{
		Use:   "accept INCREMENT",
		Short: "Accept an increment tested on the test environment (product owners only; the API records who)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Accept(cmd.Context(), args[0], comment, waitFor)
		},
	}
	accept.Flags().StringVar(&comment, "comment", "", "Comment for the record.")
	accept.Flags().BoolVar(&waitFor, "wait", false, "Follow the increment until it is promoted (autoPromote) or awaits promotion.")

	reject := &cobra.Command{
		Use:   "reject INCREMENT --comment TEXT",
		Short: "Reject an increment, saying why (product owners only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Reject(cmd.Context(), args[0], comment)
		},
	}
	reject.Flags().StringVar(&comment, "comment", "", "What is wrong (required).")

	promote := &cobra.Command{
		Use:   "promote INCREMENT",
		Short: "Promote an accepted increment to the next stage; with --wait the exit status tells whether it reached production",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Promote(cmd.Context(), args[0], waitFor)
		},
	}
	promote.Flags().BoolVar(&waitFor, "wait", false, "Follow the promotion step by step; exit 1 unless it ends Promoted.")

	backup := &cobra.Command{
		Use:   "backup ENVIRONMENT",
		Short: "Take a manual backup of an environment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Backup(cmd.Context(), args[0], waitFor)
		},
	}
	backup.Flags().BoolVar(&waitFor, "wait", false, "Wait until the backup completed or failed.")

	var to string
	restore := &cobra.Command{
		Use:   "restore BACKUP --to ENVIRONMENT",
		Short: "Replace an environment's data with a backup (production needs --confirm)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to ENVIRONMENT is required")
			}
			return cli.Restore(cmd.Context(), args[0], to, confirm, waitFor)
		},
	}
	restore.Flags().StringVar(&to, "to", "", "Environment to restore into.")
	restore.Flags().BoolVar(&confirm, "confirm", false, "Confirm replacing a production environment's data.")
	restore.Flags().BoolVar(&waitFor, "wait", false, "Wait until the restore completed or failed.")

	hibernate := &cobra.Command{
		Use:   "hibernate ENVIRONMENT",
		Short: "Stop an environment's workloads, keeping its data",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return cli.Hibernate(cmd.Context(), args[0], true) },
	}
	wake := &cobra.Command{
		Use:   "wake ENVIRONMENT",
		Short: "Start a hibernated environment again",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return cli.Hibernate(cmd.Context(), args[0], false) },
	}

	mail := &cobra.Command{
		Use:   "mail ENVIRONMENT",
		Short: "Show where a non-production environment's caught mail is read",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return cli.Mail(cmd.Context(), args[0]) },
	}

	var project, email, reason string
	erase := &cobra.Command{
		Use:   "erase --project PROJECT --email ADDRESS",
		Short: "Erase a person from every environment of a project (GDPR Art. 17)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if project == "" || email == "" {
				return errors.New("--project and --email are required")
			}
			return cli.Erase(cmd.Context(), project, email, reason, waitFor)
		},
	}
	erase.Flags().StringVar(&project, "project", "", "The project.")
	erase.Flags().StringVar(&email, "email", "", "The person's e-mail address (removed from the cluster once erased).")
	erase.Flags().StringVar(&reason, "reason", "", "Why, for the record (no personal data).")
	erase.Flags().BoolVar(&waitFor, "wait", false, "Wait until every environment erased the person.")

	status := &cobra.Command{
		Use:   "status [PROJECT]",
		Short: "Show a project's environments and increments (default: the project of the current namespace)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := ""
			if len(args) == 1 {
				p = args[0]
			}
			return cli.Status(cmd.Context(), p)
		},
	}
	root.AddCommand(status, accept, reject, promote, backup, restore, hibernate, wake, mail, erase)
	return root
}
