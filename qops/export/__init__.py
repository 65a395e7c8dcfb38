"""Export of measured data: HDF5 files (xarray with the h5netcdf engine) and where they go."""
