"""The commands of ``splitverify-server``, registered into the ``splitverify`` command through
the ``splitverify.commands`` entry-point group (:mod:`.commands`)."""
