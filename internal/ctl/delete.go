package ctl

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

func (r *root) deleteCmd() *cobra.Command {
	var mesh string
	cmd := &cobra.Command{
		Use:               "delete KIND NAME",
		Short:             "Delete a resource",
		Example:           "  trellisctl delete meshtimeout my-timeout -m demo\n  trellisctl delete mesh demo",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: r.completeKinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := r.resolveKind(args[0])
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			name, m := args[1], meshFor(d, mesh)
			err = c.Delete(cmd.Context(), d.Path, m, name)
			if errors.Is(err, apiclient.ErrNotFound) {
				return fmt.Errorf("there is no %s", describeRef(d, m, name))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %q\n", d.Kind, name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&mesh, "mesh", "m", DefaultMesh, "mesh of mesh-scoped kinds")
	return cmd
}
